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
    read = set(re.findall(r'_(?:env|int|bool|list)\("([A-Z0-9_]+)"', (root / "idp/config.py").read_text()))
    listed = set(re.findall(r"^([A-Z0-9_]+)=", (root / ".env.example").read_text(), re.M))
    assert read - listed == set()
