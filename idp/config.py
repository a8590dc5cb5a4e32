"""The one place that reads the environment.

Every setting is named as in the seed README where the seed names it. Problems are collected and
reported together at start-up, so an operator fixes them in one go.
"""
from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path

# Where templates/, static/, migrations/, keys/ and instance/ live (the checkout, or /app in the image).
PROJECT_ROOT = Path(os.environ.get("AUTHY2_HOME") or Path(__file__).resolve().parent.parent)

DEV_SECRET_KEY = "dev-secret-key-change-me"
DEV_ENCRYPTION_KEY = "ZGV2LWVuY3J5cHRpb24ta2V5LWNoYW5nZS1tZS0xMjM="  # base64 of 32 bytes, dev only
PROFILES = ("development", "testing", "production")


class ConfigError(RuntimeError):
    """Raised at start-up when the settings cannot make a safe app."""


def load_env_file() -> bool:
    """Load PROJECT_ROOT/.env for `python wsgi.py` and gunicorn as the `flask` command loads it: variables
    already in the environment win, and FLASK_SKIP_DOTENV (the flask command's switch) skips the file.
    AUTHY2_HOME itself comes from the environment only, since it says where the file is."""
    from dotenv import load_dotenv
    from flask.helpers import get_load_dotenv

    return get_load_dotenv() and load_dotenv(PROJECT_ROOT / ".env", override=False, encoding="utf-8")


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _int(name: str, default: int, problems: list[str]) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        problems.append(f"{name} must be an integer, got {raw!r}")
        return default


def _float(name: str, default: float, problems: list[str]) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        problems.append(f"{name} must be a number, got {raw!r}")
        return default


def _bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (_env(name, default) or "").split(",") if item.strip()]


def _database_url(profile: str) -> str:
    url = _env("DATABASE_URL")
    if url:
        return url.replace("postgres://", "postgresql://", 1)
    if _env("POSTGRES_HOST"):
        user = _env("POSTGRES_USER", "authy2")
        password = _env("POSTGRES_PASSWORD", "")
        host = _env("POSTGRES_HOST")
        port = _env("POSTGRES_PORT", "5432")
        name = _env("POSTGRES_DB", "authy2")
        return f"postgresql://{user}:{password}@{host}:{port}/{name}"
    if profile == "testing":
        return "sqlite://"
    (PROJECT_ROOT / "instance").mkdir(exist_ok=True)
    return f"sqlite:///{PROJECT_ROOT / 'instance' / 'authy2.db'}"


def _check_key_material(name: str, value: str, problems: list[str]) -> None:
    try:
        raw = base64.urlsafe_b64decode(value.encode())
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 32:
        problems.append(
            f"{name} must be 32 random bytes, urlsafe-base64 encoded; make one with: "
            "python -c 'import secrets,base64;print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'"
        )


@dataclass
class Settings:
    """Typed view of the environment, turned into Flask config by `as_flask_config`."""

    profile: str
    values: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def load_settings(overrides: dict | None = None) -> Settings:
    """Read every setting from the environment, then apply `overrides` (used by tests)."""
    problems: list[str] = []
    profile = _env("FLASK_ENV", "development")
    if profile not in PROFILES:
        problems.append(f"FLASK_ENV must be one of {', '.join(PROFILES)}, got {profile!r}")
        profile = "production"
    production = profile == "production"
    testing = profile == "testing"

    v: dict = {
        # Signs cookies and CSRF tokens; 256-bit random in production.
        "SECRET_KEY": _env("SECRET_KEY", DEV_SECRET_KEY),
        # Encrypts secrets at rest that must be read back (32 bytes, urlsafe base64).
        "ENCRYPTION_KEY": _env("ENCRYPTION_KEY", DEV_ENCRYPTION_KEY),
        # Reserved for the signing CA's private key encryption; validated when set.
        "CA_ENCRYPTION_KEY": _env("CA_ENCRYPTION_KEY"),
        # Public base URL of this IdP; the OIDC issuer. Never taken from the Host header.
        "ISSUER": (_env("ISSUER", "http://localhost:5000") or "").rstrip("/"),
        # The management API's resource identifier: `aud` of tokens with management scopes (RFC 9068 2.2).
        "API_AUDIENCE": (_env("API_AUDIENCE") or "").rstrip("/") or None,
        # Browser origins allowed to call /api/* (comma-separated).
        "CORS_ORIGINS": _list("CORS_ORIGINS", "http://localhost:3000"),
        # Sliding idle window of a session, seconds.
        "SESSION_IDLE_TIMEOUT": _int("SESSION_IDLE_TIMEOUT", 900, problems),
        # Hard cap on a session's life from creation, seconds.
        "SESSION_ABSOLUTE_TIMEOUT": _int("SESSION_ABSOLUTE_TIMEOUT", 28800, problems),
        # bcrypt cost factor.
        "BCRYPT_LOG_ROUNDS": _int("BCRYPT_LOG_ROUNDS", 4 if testing else 12, problems),
        # SQLAlchemy URL; POSTGRES_* build one when DATABASE_URL is unset; SQLite otherwise.
        "SQLALCHEMY_DATABASE_URI": _database_url(profile),
        # Redis for rate limits, counters and replay caches (required in production); the database when unset or down.
        "REDIS_URL": _env("REDIS_URL"),
        # Seconds to wait for a Redis connection and for each answer; past them Redis counts as down.
        "REDIS_CONNECT_TIMEOUT": _float("REDIS_CONNECT_TIMEOUT", 0.25, problems),
        "REDIS_SOCKET_TIMEOUT": _float("REDIS_SOCKET_TIMEOUT", 0.25, problems),
        # Seconds a worker keeps using the fallbacks after a Redis error before it tries Redis again.
        "REDIS_RETRY_INTERVAL": _float("REDIS_RETRY_INTERVAL", 5, problems),
        # Number of proxies in front of the app whose X-Forwarded-For is trusted (0 = none).
        "TRUSTED_PROXY_COUNT": _int("TRUSTED_PROXY_COUNT", 0, problems),
        # Flask-Limiter's own switch; false turns every limit off (load tests).
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        # Login requests per client IP (Flask-Limiter; successes count too).
        "RATELIMIT_LOGIN_IP": _env("RATELIMIT_LOGIN_IP", "20 per minute"),
        # Password re-checks per signed-in user (password change, account deletion).
        "RATELIMIT_LOGIN_ACCOUNT": _env("RATELIMIT_LOGIN_ACCOUNT", "10 per 15 minutes"),
        # Sign-in lockout (failures in an hour): an address is refused for one account, then for all;
        # an account is slowed down (never locked) for clients without its device cookie.
        "LOCKOUT_PAIR_THRESHOLD": _int("LOCKOUT_PAIR_THRESHOLD", 5, problems),
        "LOCKOUT_ADDRESS_THRESHOLD": _int("LOCKOUT_ADDRESS_THRESHOLD", 20, problems),
        "LOCKOUT_ACCOUNT_THRESHOLD": _int("LOCKOUT_ACCOUNT_THRESHOLD", 10, problems),
        # Contact form limit per client IP.
        "RATELIMIT_CONTACT": _env("RATELIMIT_CONTACT", "5 per hour"),
        # Registration limit per client IP, the hosted page and the API together.
        "RATELIMIT_REGISTER": _env("RATELIMIT_REGISTER", "10 per hour"),
        # Per client IP: authorization requests that must wait for sign-in or consent (each stores a pending row).
        "RATELIMIT_AUTHORIZE_PENDING": _env("RATELIMIT_AUTHORIZE_PENDING", "60 per minute"),
        # Per client IP: asks for a mailed link (forgot password, resend verification), one budget.
        "RATELIMIT_ACCOUNT_MAIL": _env("RATELIMIT_ACCOUNT_MAIL", "5 per hour"),
        # Per recipient address: account mails sent; over it a mail is silently held back (always on).
        "RATELIMIT_MAIL_RECIPIENT": _env("RATELIMIT_MAIL_RECIPIENT", "3 per 15 minutes"),
        # Largest request body accepted, bytes.
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 1024 * 1024, problems),
        # Outgoing mail.
        "SMTP_HOST": _env("SMTP_HOST"),
        "SMTP_PORT": _int("SMTP_PORT", 25, problems),
        "SMTP_USERNAME": _env("SMTP_USERNAME"),
        "SMTP_PASSWORD": _env("SMTP_PASSWORD"),
        "SMTP_STARTTLS": _bool("SMTP_STARTTLS", False),
        "SMTP_TIMEOUT": _int("SMTP_TIMEOUT", 10, problems),
        "MAIL_FROM": _env("MAIL_FROM", "Authy2 <no-reply@localhost>"),
        # Where contact enquiries are mailed.
        "CONTACT_EMAIL": _env("CONTACT_EMAIL", "info@secuird.tech"),
        # Folder for mail when no SMTP host is set (development).
        "MAIL_OUTBOX_DIR": _env("MAIL_OUTBOX_DIR", str(PROJECT_ROOT / "instance" / "outbox")),
        # Folder holding the signing keys shared by every worker.
        "KEYS_DIR": _env("KEYS_DIR", str(PROJECT_ROOT / "keys")),
        # Self-service registration on the hosted pages and the API.
        "REGISTRATION_ENABLED": _bool("REGISTRATION_ENABLED", True),
        # Product name and colour shown on hosted pages.
        "BRAND_NAME": _env("BRAND_NAME", "Authy2"),
        "BRAND_COLOR": _env("BRAND_COLOR", "#3b5bdb"),
        # Job runner: which job and how often (seconds).
        "JOB_NAME": _env("JOB_NAME", "all"),
        "JOB_INTERVAL_SECONDS": _int("JOB_INTERVAL_SECONDS", 300, problems),
        # Purge jobs: rows deleted per statement and transaction, and batches per table per run.
        "JOB_PURGE_BATCH": _int("JOB_PURGE_BATCH", 5000, problems),
        "JOB_PURGE_MAX_BATCHES": _int("JOB_PURGE_MAX_BATCHES", 200, problems),
        # Seconds an ended session (expired or revoked) is kept after its expiry before the job deletes it.
        "SESSION_RETENTION": _int("SESSION_RETENTION", 7 * 86400, problems),
        # Log level for the app's logger.
        "LOG_LEVEL": _env("LOG_LEVEL", "INFO"),
        # OIDC: lifetimes in seconds of authorization codes, pending sign-in requests and tokens.
        "AUTHORIZATION_CODE_LIFETIME": _int("AUTHORIZATION_CODE_LIFETIME", 60, problems),
        "AUTHORIZATION_REQUEST_LIFETIME": _int("AUTHORIZATION_REQUEST_LIFETIME", 1800, problems),
        "ACCESS_TOKEN_LIFETIME": _int("ACCESS_TOKEN_LIFETIME", 3600, problems),
        "ID_TOKEN_LIFETIME": _int("ID_TOKEN_LIFETIME", 3600, problems),
        "REFRESH_TOKEN_LIFETIME": _int("REFRESH_TOKEN_LIFETIME", 30 * 86400, problems),
        # OIDC: seconds a worker may reuse a client row (0 = always read); changes drop it (idp.oidc.client_cache).
        "CLIENT_CACHE_SECONDS": _int("CLIENT_CACHE_SECONDS", 0 if testing else 30, problems),
        # OIDC: let clients' jwks_uri be http or resolve to loopback/private addresses (never in production).
        "ALLOW_PRIVATE_JWKS_URI": _bool("ALLOW_PRIVATE_JWKS_URI", profile != "production"),
        # OIDC Back-Channel Logout: let backchannel_logout_uri be http or a loopback/private address (never in production).
        "ALLOW_PRIVATE_LOGOUT_URI": _bool("ALLOW_PRIVATE_LOGOUT_URI", profile != "production"),
        # OIDC Back-Channel Logout: seconds one logout token POST may take, attempts per RP, first retry delay (doubling).
        "LOGOUT_DELIVERY_TIMEOUT": _int("LOGOUT_DELIVERY_TIMEOUT", 5, problems),
        "LOGOUT_DELIVERY_ATTEMPTS": _int("LOGOUT_DELIVERY_ATTEMPTS", 5, problems),
        "LOGOUT_RETRY_DELAY": _int("LOGOUT_RETRY_DELAY", 2, problems),
        # Federation: let upstream URLs be http or resolve to loopback/private addresses (never in production).
        "ALLOW_PRIVATE_UPSTREAM_URLS": _bool("ALLOW_PRIVATE_UPSTREAM_URLS", profile != "production"),
        # Federation: seconds one request to an upstream (discovery, token, userinfo, metadata) may take.
        "UPSTREAM_HTTP_TIMEOUT": _int("UPSTREAM_HTTP_TIMEOUT", 10, problems),
        # Federation: seconds a started upstream sign-in (state, nonce, SAML request) stays usable.
        "UPSTREAM_LOGIN_LIFETIME": _int("UPSTREAM_LOGIN_LIFETIME", 600, problems),
        # Federation bootstrap (`flask upstreams sync-env`, and at start-up): the platform upstreams google,
        # microsoft, github and saml, created or updated from these. Google: the OAuth client's id and secret.
        "GOOGLE_CLIENT_ID": _env("GOOGLE_CLIENT_ID"),
        "GOOGLE_CLIENT_SECRET": _env("GOOGLE_CLIENT_SECRET"),
        # Google: the issuer its discovery must name (default https://accounts.google.com).
        "GOOGLE_ISSUER": _env("GOOGLE_ISSUER"),
        # Microsoft Entra ID: the app registration's client id and secret.
        "MICROSOFT_CLIENT_ID": _env("MICROSOFT_CLIENT_ID"),
        "MICROSOFT_CLIENT_SECRET": _env("MICROSOFT_CLIENT_SECRET"),
        # Microsoft: tenant id or common/organizations/consumers (default common), and the authority host.
        "MICROSOFT_TENANT": _env("MICROSOFT_TENANT"),
        "MICROSOFT_AUTHORITY": _env("MICROSOFT_AUTHORITY"),
        # GitHub: the OAuth app's client id and secret.
        "GITHUB_CLIENT_ID": _env("GITHUB_CLIENT_ID"),
        "GITHUB_CLIENT_SECRET": _env("GITHUB_CLIENT_SECRET"),
        # GitHub Enterprise Server: its URL and REST API URL (defaults https://github.com, https://api.github.com).
        "GITHUB_URL": _env("GITHUB_URL"),
        "GITHUB_API_URL": _env("GITHUB_API_URL"),
        # SAML 2.0: the IdP's metadata URL.
        "SAML_IDP_METADATA_URL": _env("SAML_IDP_METADATA_URL"),
        # OIDC: RFC 7591 registration without an initial access token (off by default).
        "OPEN_CLIENT_REGISTRATION": _bool("OPEN_CLIENT_REGISTRATION", False),
        # OIDC: lifetime of an initial access token from `flask clients initial-token`, seconds.
        "INITIAL_ACCESS_TOKEN_LIFETIME": _int("INITIAL_ACCESS_TOKEN_LIFETIME", 86400, problems),
        # Organizations: seconds a mailed invitation link stays usable (a resend starts it again).
        "INVITATION_LIFETIME": _int("INVITATION_LIFETIME", 7 * 86400, problems),
    }
    if overrides:
        v.update(overrides)

    _validate(v, production, problems)
    settings = Settings(profile=profile, values=v, problems=problems)
    if not production and v["SECRET_KEY"] == DEV_SECRET_KEY:
        settings.warnings.append("using the development SECRET_KEY: never do this in production")
    if not production and plain_http_issuer(v["ISSUER"]):
        settings.warnings.append(f"ISSUER {v['ISSUER']} is plain http on a host other than loopback: Authlib's "
                                 "https check is lifted for this development process (production requires https)")
    return settings


def plain_http_issuer(issuer: str) -> bool:
    """An http:// ISSUER that Authlib's transport check (RFC 6749 3.1, 10.9) would refuse: every host except
    localhost and loopback addresses. Authlib checks the request URI, which Authy2 builds from ISSUER."""
    import ipaddress
    from urllib.parse import urlsplit

    parts = urlsplit(issuer)
    if parts.scheme != "http" or parts.hostname in (None, "localhost"):
        return False
    try:
        return not ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return True


def _validate(v: dict, production: bool, problems: list[str]) -> None:
    from limits import parse_many

    for name in [k for k in v if k.startswith("RATELIMIT_") and isinstance(v[k], str) and k != "RATELIMIT_STORAGE_URI"]:
        try:
            parse_many(v[name])
        except ValueError:
            problems.append(f"{name} is not a rate limit like '5 per hour', got {v[name]!r}")
    if v["SESSION_IDLE_TIMEOUT"] <= 0 or v["SESSION_ABSOLUTE_TIMEOUT"] <= 0:
        problems.append("SESSION_IDLE_TIMEOUT and SESSION_ABSOLUTE_TIMEOUT must be positive")
    if v["INVITATION_LIFETIME"] <= 0:
        problems.append("INVITATION_LIFETIME must be positive")
    if v["JOB_PURGE_BATCH"] <= 0 or v["JOB_PURGE_MAX_BATCHES"] <= 0 or v["SESSION_RETENTION"] < 0:
        problems.append("JOB_PURGE_BATCH and JOB_PURGE_MAX_BATCHES must be positive, SESSION_RETENTION not negative")
    if not 4 <= v["BCRYPT_LOG_ROUNDS"] <= 31:
        problems.append("BCRYPT_LOG_ROUNDS must be between 4 and 31")
    audience = v["API_AUDIENCE"]
    if audience is not None and (audience == v["ISSUER"] or "#" in audience or "://" not in audience):
        problems.append("API_AUDIENCE must be an absolute URI without a fragment, and not the ISSUER itself "
                        "(a token for the management API must never pass for one of the issuer's own)")
    if min(v["LOCKOUT_PAIR_THRESHOLD"], v["LOCKOUT_ADDRESS_THRESHOLD"], v["LOCKOUT_ACCOUNT_THRESHOLD"]) < 1:
        problems.append("LOCKOUT_PAIR_THRESHOLD, LOCKOUT_ADDRESS_THRESHOLD and LOCKOUT_ACCOUNT_THRESHOLD must be at least 1")
    if min(v["REDIS_CONNECT_TIMEOUT"], v["REDIS_SOCKET_TIMEOUT"], v["REDIS_RETRY_INTERVAL"]) <= 0:
        problems.append("REDIS_CONNECT_TIMEOUT, REDIS_SOCKET_TIMEOUT and REDIS_RETRY_INTERVAL must be positive")
    _check_key_material("ENCRYPTION_KEY", v["ENCRYPTION_KEY"], problems)
    if v["CA_ENCRYPTION_KEY"]:
        _check_key_material("CA_ENCRYPTION_KEY", v["CA_ENCRYPTION_KEY"], problems)
    if not production:
        return
    make = "make one with: python -c 'import secrets;print(secrets.token_urlsafe(48))'"
    if v["SECRET_KEY"] in (None, DEV_SECRET_KEY) or len(v["SECRET_KEY"]) < 32:
        problems.append(f"SECRET_KEY is missing, the development default or shorter than 32 characters; {make}")
    if v["ENCRYPTION_KEY"] == DEV_ENCRYPTION_KEY:
        problems.append("ENCRYPTION_KEY is missing or the development default; set a fresh 32-byte key")
    if not v["ISSUER"].startswith("https://"):
        problems.append("ISSUER must be an https:// URL in production")
    if v["BCRYPT_LOG_ROUNDS"] < 12:
        problems.append("BCRYPT_LOG_ROUNDS must be at least 12 in production")
    if not v["REDIS_URL"]:
        problems.append("REDIS_URL is required in production: without Redis every worker keeps its own rate limits "
                        "(n workers allow n times each limit) and every request for a counter or a replay check "
                        "goes to the database; set REDIS_URL=redis://<host>:6379/0")


def redis_client_options(v: dict) -> dict:
    """redis-py options for every Redis client: short timeouts and no retries (redis.Redis() retries a
    timeout 10 times by default), so a stalled Redis costs a request one short timeout, never several."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {"socket_connect_timeout": v["REDIS_CONNECT_TIMEOUT"], "socket_timeout": v["REDIS_SOCKET_TIMEOUT"],
            "retry": Retry(NoBackoff(), 0)}


def as_flask_config(settings: Settings) -> dict:
    """The Flask config mapping for these settings."""
    v = dict(settings.values)
    production = settings.profile == "production"
    v.update(
        ENV_PROFILE=settings.profile,
        TESTING=settings.profile == "testing",
        # hide_parameters: a database error never writes bound values (hashes, emails) to the log.
        # No pool_pre_ping: its SELECT 1 was one round trip in five on every request that uses the
        # database. Only a connection left idle is pinged (idp.extensions.IdleConnectionPing); one that
        # dies under a request answers it 503 with Retry-After (idp.error_handlers), and SQLAlchemy then
        # discards every connection the pool opened before it, so the next request gets a fresh one.
        # pool_recycle bounds a connection's age at the cost of a clock read on checkout: a proxy or a
        # failover that ends old connections (PgBouncer's server_lifetime is 3600 s) meets none.
        SQLALCHEMY_ENGINE_OPTIONS={"pool_recycle": 1800, "hide_parameters": True},
        RATELIMIT_STORAGE_URI=v["REDIS_URL"] or "memory://",
        REDIS_CLIENT_OPTIONS=redis_client_options(v),
        # The limiter's Redis client gets the same short timeouts; when Redis fails it counts in memory
        # (per worker) until Redis answers again, and a Redis error never fails the request.
        RATELIMIT_STORAGE_OPTIONS=redis_client_options(v) if v["REDIS_URL"] else {},
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_HEADERS_ENABLED=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=v["ISSUER"].startswith("https://"),
        PREFERRED_URL_SCHEME="https" if v["ISSUER"].startswith("https://") else "http",
        WTF_CSRF_TIME_LIMIT=None if not production else 3600,
        API_TITLE="Authy2 API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
    )
    if settings.profile == "testing" and v["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        from sqlalchemy.pool import StaticPool

        v["SQLALCHEMY_ENGINE_OPTIONS"] = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    return v
