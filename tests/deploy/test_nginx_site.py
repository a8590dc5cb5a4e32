"""The deployment files agree with each other and with the app: the compose site is the tested site, nginx's
limits match the app's, and docker-compose publishes nginx only (issue #9 item 1)."""
from __future__ import annotations

import re

import yaml

from idp.config import load_settings
from tests.deploy.processes import NGINX_SITE, ROOT, directive_value

COMPOSE_SITE = ROOT / "docs" / "deploy" / "nginx.compose.conf"
# The lines that may differ: where the app and the certificates are, where the log goes, IPv6 listeners.
GUNICORN_KEEPALIVE = 5  # idp/gunicorn_conf.py's default
PLACE_DEPENDENT = ("server 127.0.0.1:8000;", "server api:8000;", "ssl_certificate", "access_log", "listen [::]")


def directives(site: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in site.splitlines())
    return [line for line in lines if line and not any(text in line for text in PLACE_DEPENDENT)]


def test_the_compose_site_is_the_tested_site_with_other_addresses():
    """nginx.compose.conf differs from nginx.conf (run by test_slow_clients) only in addresses and paths."""
    compose = COMPOSE_SITE.read_text()
    assert directives(compose) == directives(NGINX_SITE.read_text())
    assert "server api:8000;" in compose and "/etc/nginx/certs/fullchain.pem" in compose


def test_nginx_refuses_bodies_the_app_would_refuse_and_no_smaller():
    """client_max_body_size is the app's MAX_CONTENT_LENGTH (1 MiB)."""
    size = directive_value(NGINX_SITE.read_text(), "client_max_body_size")
    assert size == "1m" and load_settings().values["MAX_CONTENT_LENGTH"] == 1024 * 1024


def test_nginx_lets_go_of_idle_upstream_connections_before_gunicorn_closes_them():
    """The upstream keepalive_timeout is below gunicorn's keepalive (5 s), so nginx never reuses a closing one."""
    upstream = re.search(r"upstream authy2_app \{(.*?)\}", NGINX_SITE.read_text(), re.DOTALL).group(1)
    assert int(directive_value(upstream, "keepalive_timeout").removesuffix("s")) < GUNICORN_KEEPALIVE


def test_compose_publishes_nginx_only_and_trusts_one_proxy():
    """The api is reached only through nginx (80/443), which mounts the compose site; the app trusts one proxy."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert "ports" not in services["api"] and services["api"]["environment"]["TRUSTED_PROXY_COUNT"] == 1
    assert services["nginx"]["ports"] == ["80:80", "443:443"]
    mounted = [volume.split(":")[0] for volume in services["nginx"]["volumes"]]
    assert "./docs/deploy/nginx.compose.conf" in mounted


def test_compose_migrates_before_any_app_process_starts():
    """/api/health answers 503 while the schema is behind, so the api must never start on an unmigrated
    database: a one-shot `migrate` service upgrades (and syncs the env upstreams) and api and jobs wait for it."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["migrate"]["command"] == ["sh", "-c", "flask db upgrade && flask upstreams sync-env"]
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "jobs"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
