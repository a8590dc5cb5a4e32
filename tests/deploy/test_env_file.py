"""The project's .env is read by every entry point, as the `flask` command reads it, and the environment wins
over the file (issue #9 item 10): `python wsgi.py` and gunicorn with idp/gunicorn_conf.py.

Each test runs in its own AUTHY2_HOME holding a .env, so a developer's own .env is never read."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from tests.deploy.processes import ROOT, clean_env, free_port, start_gunicorn

FROM_FILE = "http://issuer.from-dotenv.test"
FROM_ENVIRONMENT = "http://issuer.from-environment.test"
READ_CONFIG = ("import json, wsgi; c = wsgi.app.config; "
               "print(json.dumps([c['BRAND_NAME'], c['ISSUER'], c['ENV_PROFILE']]))")


@pytest.fixture
def home(tmp_path):
    """An AUTHY2_HOME with the checkout's templates, static files and migrations, and a .env."""
    for folder in ("templates", "static", "migrations"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    return tmp_path


def write_env_file(home, **extra: str) -> None:
    settings = {"FLASK_ENV": "development", "BRAND_NAME": "FromDotenv", "ISSUER": FROM_FILE,
                "DATABASE_URL": f"sqlite:///{home / 'authy2.db'}", "KEYS_DIR": str(home / "keys"),
                "MAIL_OUTBOX_DIR": str(home / "outbox"), **extra}
    (home / ".env").write_text("".join(f"{name}={value}\n" for name, value in settings.items()))


def wsgi_config(env: dict) -> list[str]:
    result = subprocess.run([sys.executable, "-c", READ_CONFIG], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_wsgi_reads_the_env_file_and_the_environment_wins(home):
    """`python wsgi.py`'s app takes BRAND_NAME and FLASK_ENV from .env; ISSUER set in the environment wins."""
    write_env_file(home)
    env = clean_env(home, AUTHY2_HOME=str(home), ISSUER=FROM_ENVIRONMENT)
    assert wsgi_config(env) == ["FromDotenv", FROM_ENVIRONMENT, "development"]


def test_flask_skip_dotenv_skips_the_file_as_it_does_for_the_flask_command(home):
    """FLASK_SKIP_DOTENV=1, the flask command's switch, keeps wsgi.py from reading .env too."""
    write_env_file(home)
    env = clean_env(home, AUTHY2_HOME=str(home), FLASK_SKIP_DOTENV="1", FLASK_ENV="development",
                    ISSUER=FROM_ENVIRONMENT, DATABASE_URL=f"sqlite:///{home / 'other.db'}",
                    KEYS_DIR=str(home / "keys"))
    assert wsgi_config(env) == ["Authy2", FROM_ENVIRONMENT, "development"]


def test_gunicorn_reads_the_env_file_for_its_own_settings_and_the_app(home):
    """gunicorn binds where .env's GUNICORN_BIND says and warns once about its two workers without Redis; the app
    it serves shows .env's BRAND_NAME and the environment's ISSUER."""
    port = free_port()
    write_env_file(home, GUNICORN_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="2")
    env = clean_env(home, AUTHY2_HOME=str(home), ISSUER=FROM_ENVIRONMENT)
    server = start_gunicorn(env, home / "gunicorn.log", port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=10) as answer:
            assert json.load(answer)["issuer"] == FROM_ENVIRONMENT
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as answer:
            assert "FromDotenv" in answer.read().decode()
    finally:
        server.stop()
    assert server.log().count("rate limits are per worker without Redis; set REDIS_URL") == 1
