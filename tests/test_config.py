"""Start-up configuration: profiles, validation, and production's refusal of unsafe defaults."""
import pytest

from idp import create_app
from idp.config import ConfigError, load_settings


def test_production_refuses_default_secret_key(monkeypatch):
    """Production with the development SECRET_KEY and ENCRYPTION_KEY stops with a message naming both."""
    monkeypatch.setenv("FLASK_ENV", "production")
    monkeypatch.setenv("ISSUER", "https://id.example.com")
    with pytest.raises(ConfigError) as excinfo:
        create_app()
    message = str(excinfo.value)
    assert "SECRET_KEY" in message and "ENCRYPTION_KEY" in message
    assert "make one with" in message


def test_production_refuses_plain_http_issuer(monkeypatch):
    """Production requires an https issuer, since tokens and cookies are bound to it."""
    monkeypatch.setenv("FLASK_ENV", "production")
    monkeypatch.setenv("ISSUER", "http://id.example.com")
    assert any("ISSUER" in p for p in load_settings().problems)


def test_all_problems_reported_at_once(monkeypatch):
    """Every bad setting is listed together, so an operator fixes them in one go."""
    monkeypatch.setenv("SESSION_IDLE_TIMEOUT", "soon")
    monkeypatch.setenv("BCRYPT_LOG_ROUNDS", "99")
    monkeypatch.setenv("ENCRYPTION_KEY", "too-short")
    problems = load_settings().problems
    assert any("SESSION_IDLE_TIMEOUT" in p for p in problems)
    assert any("BCRYPT_LOG_ROUNDS" in p for p in problems)
    assert any("ENCRYPTION_KEY" in p for p in problems)


def test_ca_encryption_key_validated_when_set(monkeypatch):
    """CA_ENCRYPTION_KEY, reserved for the signing CA, must be 32 base64 bytes when given."""
    monkeypatch.setenv("CA_ENCRYPTION_KEY", "nope")
    assert any("CA_ENCRYPTION_KEY" in p for p in load_settings().problems)


def test_seed_defaults_match_readme(monkeypatch):
    """Session windows default to the seed's 900 s idle and 28800 s absolute."""
    monkeypatch.delenv("SESSION_IDLE_TIMEOUT", raising=False)
    monkeypatch.delenv("SESSION_ABSOLUTE_TIMEOUT", raising=False)
    values = load_settings().values
    assert values["SESSION_IDLE_TIMEOUT"] == 900
    assert values["SESSION_ABSOLUTE_TIMEOUT"] == 28800


def test_postgres_settings_build_database_url(monkeypatch):
    """POSTGRES_* build the database URL when DATABASE_URL is unset."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("POSTGRES_HOST", "db")
    monkeypatch.setenv("POSTGRES_USER", "authy2")
    monkeypatch.setenv("POSTGRES_PASSWORD", "pw")
    monkeypatch.setenv("POSTGRES_DB", "idp")
    url = load_settings().values["SQLALCHEMY_DATABASE_URI"]
    assert url == "postgresql://authy2:pw@db:5432/idp"


def test_env_example_lists_every_setting():
    """.env.example names every environment variable the config reads, so operators see them all."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    read = set(re.findall(r'_(?:env|int|float|bool|list)\("([A-Z0-9_]+)"', (root / "idp/config.py").read_text()))
    listed = set(re.findall(r"^([A-Z0-9_]+)=", (root / ".env.example").read_text(), re.M))
    assert read - listed == set()


VALID_PRODUCTION = {"SECRET_KEY": "x" * 40, "ISSUER": "https://id.example.com", "BCRYPT_LOG_ROUNDS": 12,
                    "ENCRYPTION_KEY": "cHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHA="}


def test_production_refuses_to_start_without_redis(monkeypatch):
    """Without Redis each worker keeps its own rate limits: production names REDIS_URL and says why."""
    monkeypatch.setenv("FLASK_ENV", "production")
    with pytest.raises(ConfigError) as excinfo:
        create_app(dict(VALID_PRODUCTION))
    message = str(excinfo.value)
    assert "REDIS_URL is required in production: without Redis every worker keeps its own rate limits" in message
    assert load_settings({**VALID_PRODUCTION, "REDIS_URL": "redis://redis:6379/0"}).problems == []


def test_development_runs_without_redis(monkeypatch):
    """Development and tests start without REDIS_URL (counters and replay caches use the database)."""
    monkeypatch.setenv("FLASK_ENV", "development")
    assert not any("REDIS_URL" in p for p in load_settings({"REDIS_URL": None}).problems)


def test_redis_timeouts_are_short_and_without_retries():
    """A stalled Redis costs a request one short timeout: 0.25 s defaults, no retries, for the limiter too."""
    from idp.config import as_flask_config

    config = as_flask_config(load_settings({"REDIS_URL": "redis://redis:6379/0"}))
    options = config["RATELIMIT_STORAGE_OPTIONS"]
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 0.25
    assert options["retry"].get_retries() == 0
    assert config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] is True and config["RATELIMIT_SWALLOW_ERRORS"] is True


def test_redis_timeouts_must_be_positive_numbers(monkeypatch):
    """REDIS_SOCKET_TIMEOUT must be a number and every Redis timing positive."""
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT", "fast")
    monkeypatch.setenv("REDIS_RETRY_INTERVAL", "0")
    problems = load_settings().problems
    assert any("REDIS_SOCKET_TIMEOUT must be a number" in p for p in problems)
    assert any("REDIS_RETRY_INTERVAL must be positive" in p for p in problems)


def _lan_development_app(monkeypatch, tmp_path, **overrides):
    """A development app on ISSUER http://<LAN host> (not loopback), its tables made."""
    monkeypatch.setenv("FLASK_ENV", "development")
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "")
    monkeypatch.delenv("AUTHLIB_INSECURE_TRANSPORT")
    overrides = {"ISSUER": "http://idp.lan.example:5000", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/dev.db",
                 **overrides}
    assert any("plain http" in w for w in load_settings(overrides).warnings)
    app = create_app(overrides)
    from idp.extensions import db

    with app.app_context():
        db.create_all()
    return app


def test_development_serves_authorization_on_a_plain_http_lan_issuer(monkeypatch, tmp_path):
    """Development on ISSUER http://<LAN host> (not loopback): /oauth2/authorize answers the RFC 6749 4.1.2.1
    error page for an unknown client (400), not a 500 from Authlib's https check (RFC 6749 3.1), and start-up
    warns that the check is lifted."""
    app = _lan_development_app(monkeypatch, tmp_path)
    response = app.test_client().get("/oauth2/authorize?client_id=nobody&response_type=code&scope=openid"
                                     "&redirect_uri=http://rp.lan.example/cb")
    assert response.status_code == 400
    assert b"Sign-in request refused" in response.data


LAN_SPA = {"client_name": "LAN SPA", "redirect_uris": ["http://127.0.0.1:8080/cb"], "response_types": ["code"],
           "grant_types": ["authorization_code"], "token_endpoint_auth_method": "none", "scope": "openid"}


def test_plain_http_lan_issuer_lifts_no_https_check_but_its_own(monkeypatch, tmp_path):
    """The issuer's request URIs alone are spared Authlib's https check: nothing process-wide is switched off
    (AUTHLIB_INSECURE_TRANSPORT would lift every check Authlib makes, client metadata's too), and a public
    client registers with https logout URIs as anywhere."""
    client = _lan_development_app(monkeypatch, tmp_path, OPEN_CLIENT_REGISTRATION=True).test_client()
    import os

    assert "AUTHLIB_INSECURE_TRANSPORT" not in os.environ
    accepted = client.post("/oauth2/register", json={**LAN_SPA, "post_logout_redirect_uris": ["https://spa.example/bye"]})
    assert accepted.status_code == 201


def test_plain_http_lan_issuer_keeps_the_https_rule_for_public_clients_logout_uris(monkeypatch, tmp_path):
    """OIDC RP-Initiated Logout 1.0 3.1: a public client's post_logout_redirect_uris must be https (http only
    for confidential clients): 400 invalid_client_metadata (RFC 7591 3.2.2)."""
    client = _lan_development_app(monkeypatch, tmp_path, OPEN_CLIENT_REGISTRATION=True).test_client()
    refused = client.post("/oauth2/register", json={**LAN_SPA, "post_logout_redirect_uris": ["http://spa.example/bye"]})
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_client_metadata"


def test_loopback_and_https_issuers_need_no_relaxation():
    """Authlib already accepts https and loopback http (RFC 8252 7.3), so no warning is given for them."""
    from idp.config import plain_http_issuer

    assert [plain_http_issuer(i) for i in ("https://id.example.com", "http://localhost:5000", "http://127.0.0.1:8",
                                           "http://[::1]:5000", "http://id.example.com")] == [False] * 4 + [True]
