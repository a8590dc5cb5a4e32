"""Real gunicorn and nginx processes on loopback for the deployment tests, each stopped with its session."""
from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
NGINX_SITE = ROOT / "docs" / "deploy" / "nginx.conf"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(home: Path, **settings: str) -> dict:
    """An environment with nothing of the test run's own (its FLASK_ENV=testing, a developer's variables)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
           "PYTHONUNBUFFERED": "1"}
    env.update(settings)
    return env


def migrate(env: dict, timeout: float = 120) -> None:
    """`flask db upgrade` on the database the environment names, as an operator runs it."""
    result = subprocess.run([str(VENV_BIN / "flask"), "db", "upgrade"], cwd=ROOT, env={**env, "FLASK_APP": "wsgi"},
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]


class Process:
    """A child process in its own session, stopped (then killed) by its process group."""

    def __init__(self, command: list[str], env: dict, log_path: Path, cwd: Path = ROOT):
        self.command, self.env, self.log_path, self.cwd = command, env, log_path, cwd
        self.popen: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(self.command, env=self.env, cwd=self.cwd, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_port(self, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.command[0]} exited with {self.popen.returncode}:\n{self.log()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.command[0]} did not listen on {port} within {timeout}s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)


def start_gunicorn(env: dict, log_path: Path, port: int, chdir: Path = ROOT) -> Process:
    """gunicorn with the project's config module, as the Dockerfile runs it, answering on `port`."""
    command = [str(VENV_BIN / "gunicorn"), "-c", "python:idp.gunicorn_conf", "--chdir", str(chdir), "wsgi:app"]
    server = Process(command, env, log_path)
    server.start()
    try:
        server.wait_for_port(port, timeout=60)
        wait_for_answer(f"http://127.0.0.1:{port}/api/health", server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_for_answer(url: str, server: Process, timeout: float = 60) -> None:
    """Wait until a worker has booted and answers (the master listens before its workers are ready)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.popen.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.popen.returncode}:\n{server.log()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s:\n{server.log()[-3000:]}")


def nginx_executable() -> str | None:
    """Debian's nginx, found on PATH or where the package puts it (root's PATH has /usr/sbin, others may not)."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def render_site(site: str, replacements: dict[str, str], dropped: tuple[str, ...] = ()) -> str:
    """The site with each `old` text replaced (each must be there, so the file cannot drift from the test)."""
    for old, new in replacements.items():
        assert old in site, f"{old!r} is no longer in docs/deploy/nginx.conf"
        site = site.replace(old, new)
    return "\n".join(line for line in site.splitlines() if not any(text in line for text in dropped)) + "\n"


def nginx_main_config(tmp: Path, site_path: Path, nginx: str) -> str:
    """The nginx.conf around the site: in the foreground, every path in `tmp`, one worker."""
    built_with = subprocess.run([nginx, "-V"], capture_output=True, text=True, timeout=10).stderr
    temp_paths = [f"{directive} {tmp / name};" for option, directive, name in (
        ("--http-client-body-temp-path", "client_body_temp_path", "body"),
        ("--http-proxy-temp-path", "proxy_temp_path", "proxy"),
        ("--http-fastcgi-temp-path", "fastcgi_temp_path", "fastcgi"),
        ("--http-uwsgi-temp-path", "uwsgi_temp_path", "uwsgi"),
        ("--http-scgi-temp-path", "scgi_temp_path", "scgi")) if option in built_with]
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root, workers would otherwise run as nobody
    return (f"{user}daemon off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\nerror_log {tmp / 'error.log'} info;\n"
            "events { worker_connections 2048; }\n"
            "http {\n    access_log off;\n    " + "\n    ".join(temp_paths) + f"\n    include {site_path};\n}}\n")


def start_nginx(nginx: str, tmp: Path, site: str, ports: list[int]) -> Process:
    site_path = tmp / "authy2.conf"
    site_path.write_text(site)
    config_path = tmp / "nginx.conf"
    config_path.write_text(nginx_main_config(tmp, site_path, nginx))
    server = Process([nginx, "-p", str(tmp), "-c", str(config_path)], {"PATH": "/usr/sbin:/usr/bin:/bin"},
                     tmp / "nginx.out")
    server.start()
    try:
        for port in ports:
            server.wait_for_port(port, timeout=20)
    except BaseException:
        server.stop()
        raise
    return server


def self_signed_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """A certificate for `host` and 127.0.0.1 and its key, as PEM files (fullchain.pem, privkey.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(host),
                                                               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    chain, private = directory / "fullchain.pem", directory / "privkey.pem"
    chain.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return chain, private


def directive_value(site: str, directive: str) -> str:
    """The value of a directive in the site (its first occurrence), e.g. '10s' for client_body_timeout."""
    found = re.search(rf"^\s*{directive}\s+([^;]+);", site, re.MULTILINE)
    assert found, f"{directive} is not in the site"
    return found.group(1).strip()
