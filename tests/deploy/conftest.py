"""The production topology on loopback: docs/deploy/nginx.conf (TLS included) in front of gunicorn started
with idp/gunicorn_conf.py, on a SQLite file migrated by `flask db upgrade`."""
from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.deploy.processes import (NGINX_SITE, Process, clean_env, free_port, migrate, nginx_executable,
                                    render_site, self_signed_certificate, start_gunicorn, start_nginx)

SITE_HOST = "auth.example.com"
# The test's nginx cuts stalled clients after this, instead of the site's 10 s, so the tests stay short.
TEST_CLIENT_TIMEOUT = 2
WORKERS, THREADS = 2, 4


@dataclass
class Stack:
    gunicorn: Process
    gunicorn_port: int
    nginx: Process
    http_port: int
    https_port: int
    tls: ssl.SSLContext
    site: str
    access_log: Path
    gunicorn_workers: int = WORKERS
    gunicorn_threads: int = THREADS

    def https(self, source: str = "127.0.0.1", timeout: float = 5) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.https_port, context=self.tls, timeout=timeout,
                                           source_address=(source, 0))


def require_nginx() -> str:
    nginx = nginx_executable()
    if nginx is None:
        if REQUIRE_SERVICES:
            pytest.fail("nginx is not installed (apt-get install nginx-light; REQUIRE_SERVICES=1)")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    return nginx


def gunicorn_env(home: Path, port: int, **settings: str) -> dict:
    """Development settings on a SQLite file in `home`; a developer's .env is never read (FLASK_SKIP_DOTENV)."""
    return clean_env(home, FLASK_ENV="development", FLASK_SKIP_DOTENV="1",
                     DATABASE_URL=f"sqlite:///{home / 'authy2.db'}", KEYS_DIR=str(home / "keys"),
                     MAIL_OUTBOX_DIR=str(home / "outbox"), GUNICORN_BIND=f"127.0.0.1:{port}", **settings)


def render_test_site(home: Path, gunicorn_port: int, http_port: int, https_port: int) -> str:
    """docs/deploy/nginx.conf on loopback ports, with a test certificate, a local log and short client timeouts."""
    chain, key = self_signed_certificate(home, SITE_HOST)
    return render_site(NGINX_SITE.read_text(), {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{gunicorn_port};",
        "/etc/ssl/authy2/fullchain.pem": str(chain),
        "/etc/ssl/authy2/privkey.pem": str(key),
        "/var/log/nginx/authy2.access.log": str(home / "access.log"),
        "client_header_timeout 10s;": f"client_header_timeout {TEST_CLIENT_TIMEOUT}s;",
        "client_body_timeout 10s;": f"client_body_timeout {TEST_CLIENT_TIMEOUT}s;",
    }, dropped=("listen [::]",))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """nginx (the production site) in front of two gunicorn workers, both on loopback, for one test module."""
    nginx = require_nginx()
    home = tmp_path_factory.mktemp("stack")
    gunicorn_port, http_port, https_port = free_port(), free_port(), free_port()
    env = gunicorn_env(home, gunicorn_port, WEB_CONCURRENCY=str(WORKERS), GUNICORN_THREADS=str(THREADS),
                       TRUSTED_PROXY_COUNT="1")
    migrate(env)
    gunicorn = start_gunicorn(env, home / "gunicorn.log", gunicorn_port)
    proxy = None
    try:
        site = render_test_site(home, gunicorn_port, http_port, https_port)
        proxy = start_nginx(nginx, home, site, [http_port, https_port])
        tls = ssl.create_default_context(cafile=str(home / "fullchain.pem"))
        yield Stack(gunicorn, gunicorn_port, proxy, http_port, https_port, tls, site, home / "access.log")
    finally:
        if proxy is not None:
            proxy.stop()
        gunicorn.stop()
