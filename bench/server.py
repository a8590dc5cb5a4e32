"""gunicorn on loopback for the bench: start, wait until it answers, sample memory, stop."""
from __future__ import annotations

import os
import threading
from pathlib import Path

from tests.deploy.processes import (NGINX_SITE, Process, free_port, nginx_executable, render_site, start_nginx,
                                    wait_for_answer)

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"


class GunicornServer:
    """One gunicorn master with its workers, on 127.0.0.1:`port`, logging to `log_path`.

    By default it runs with the production settings (`-c python:idp.gunicorn_conf`: gthread, keep-alive,
    worker recycling, access log) with only the bind address and the worker count overridden; each
    other keyword given (not None) overrides that one setting. `production_config=False` runs bare
    gunicorn (its own defaults: sync, keep-alive 2 s, no recycling, no access log).
    """

    def __init__(self, app_spec: str, port: int, env: dict, log_path: Path, *, workers: int = 2,
                 worker_class: str | None = None, threads: int | None = None, keepalive: int | None = None,
                 max_requests: int | None = None, production_config: bool = True):
        self.app_spec = app_spec
        self.port = port
        self.env = env
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"
        self.command = [str(GUNICORN)] + (["-c", "python:idp.gunicorn_conf"] if production_config else [])
        self.command += ["-w", str(workers), "-b", f"127.0.0.1:{port}", "--chdir", str(ROOT), "--log-level", "warning"]
        for option, value in (("--worker-class", worker_class), ("--threads", threads), ("--keep-alive", keepalive),
                              ("--max-requests", max_requests)):
            if value is not None:
                self.command += [option, str(value)]
        if max_requests is not None:  # the config's jitter (a tenth) would otherwise blur the count given
            self.command += ["--max-requests-jitter", str(max_requests // 10)]
        self.command.append(app_spec)
        self.process: Process | None = None

    def describe(self) -> str:
        """The command line's settings, for the report (without the bind address and directory)."""
        parts, skip = [], False
        for part in self.command[1:-1]:
            if skip:
                skip = False
            elif part in ("-b", "--chdir", "--log-level"):
                skip = True
            else:
                parts.append(part)
        return " ".join(parts)

    def start(self, ready_path: str, timeout: float = 30.0) -> None:
        """Start gunicorn and wait until `ready_path` answers (any HTTP status)."""
        self.process = Process(self.command, self.env, self.log_path)
        self.process.start()
        try:
            wait_for_answer(self.url + ready_path, self.process, timeout)
        except BaseException:
            self.stop()
            raise

    def pids(self) -> list[int]:
        """The master and its worker processes."""
        if self.process is None:
            return []
        master = self.process.popen.pid
        return [master, *children_of(master)]

    def worker_pids(self) -> list[int]:
        return children_of(self.process.popen.pid) if self.process is not None else []

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def __enter__(self) -> "GunicornServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, found by scanning /proc (no psutil needed)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB; PSS splits pages shared after fork fairly."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


class MemorySampler:
    """Samples the summed RSS/PSS of a server's processes in a thread; keeps the peaks."""

    def __init__(self, server: GunicornServer, every: float = 0.5):
        self.server = server
        self.every = every
        self.peak_rss_kib = 0
        self.peak_pss_kib = 0
        self.processes = 0
        self.peak_rss_by_pid: dict[int, int] = {}  # the processes' RSS at the moment of the summed peak
        self.seen: set[int] = set()  # every pid sampled (recycled workers come and go)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)

    def sample(self) -> None:
        pids = self.server.pids()
        totals = [memory_kib(pid) for pid in pids]
        self.seen.update(pids)
        self.processes = max(self.processes, len(pids))
        rss_sum = sum(rss for rss, _ in totals)
        if rss_sum > self.peak_rss_kib:
            self.peak_rss_kib = rss_sum
            self.peak_rss_by_pid = {pid: rss for pid, (rss, _) in zip(pids, totals)}
        self.peak_pss_kib = max(self.peak_pss_kib, sum(pss for _, pss in totals))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()


def environment(extra: dict) -> dict:
    """The current environment minus anything that would point the app elsewhere, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "FLASK_", "DATABASE_", "POSTGRES_"))}
    env.update(extra)
    return env


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by these processes, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # utime, stime, cutime, cstime (fields 14-17 of stat): a gunicorn master's reaped workers
        # (recycled after max_requests) keep counting through it
        total += sum(int(value) for value in fields[11:15])
    return total / ticks


def postgres_backends(database: str) -> list[int]:
    """PostgreSQL backend processes serving `database` (their title names it)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            pids.append(int(cmdline.parent.name))
    return pids


class NginxFront:
    """docs/deploy/nginx.conf on loopback over plain HTTP in front of a gunicorn port (the production
    proxy with its buffering, upstream keep-alive and access log; TLS left out). Reuses the deployment
    tests' way of running Debian's nginx without root."""

    def __init__(self, upstream_port: int, directory: Path):
        self.nginx = nginx_executable()
        if self.nginx is None:
            raise RuntimeError("--behind-nginx: nginx is not installed (apt-get install -y nginx-light)")
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.site = render_site(NGINX_SITE.read_text(), {
            "listen 80;": f"listen 127.0.0.1:{free_port()};",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{self.port};",
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
            "/var/log/nginx/authy2.access.log": str(directory / "access.log"),
        }, dropped=("listen [::]", "ssl_"))
        self.process = None

    def start(self) -> None:
        self.process = start_nginx(self.nginx, self.directory, self.site, [self.port])

    def pids(self) -> list[int]:
        if self.process is None or self.process.popen is None:
            return []
        master = self.process.popen.pid
        return [master, *children_of(master)]

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


class Stack:
    """A gunicorn, alone or behind nginx: `url` is where the load goes, `pids` every serving process
    (for CPU cost), `gunicorn` the server whose master + workers the memory figure counts."""

    def __init__(self, gunicorn: GunicornServer, front: NginxFront | None = None):
        self.gunicorn = gunicorn
        self.front = front

    @property
    def url(self) -> str:
        return self.front.url if self.front else self.gunicorn.url

    def start(self, ready_path: str) -> None:
        self.gunicorn.start(ready_path)
        if self.front:
            try:
                self.front.start()
            except BaseException:
                self.gunicorn.stop()
                raise

    def pids(self) -> list[int]:
        return self.gunicorn.pids() + (self.front.pids() if self.front else [])

    def worker_pids(self) -> list[int]:
        return self.gunicorn.worker_pids()

    def describe(self) -> str:
        return f"gunicorn {self.gunicorn.describe()}" + (" behind nginx (docs/deploy/nginx.conf, plain HTTP)"
                                                         if self.front else "")

    def stop(self) -> None:
        if self.front:
            self.front.stop()
        self.gunicorn.stop()

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
