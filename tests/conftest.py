"""Shared fixtures: the app on the configured database, a clean schema per test, factories.

TEST_DATABASE_URL selects the database (a temporary SQLite file when unset); TEST_REDIS_URL makes
rate limits and replay caches use Redis. REQUIRE_SERVICES=1 (set by .ci/run) turns a skip of a
PostgreSQL or Redis test into a failure, so CI never passes by skipping them.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

os.environ["FLASK_ENV"] = "testing"
for _name in ("DATABASE_URL", "REDIS_URL", "POSTGRES_HOST", "SMTP_HOST", "SECRET_KEY", "ISSUER"):
    os.environ.pop(_name, None)

from idp import create_app  # noqa: E402
from idp.extensions import db, limiter  # noqa: E402
from tests.factories import Factories  # noqa: E402
from tests.servers import LiveServer, SmtpSink  # noqa: E402

_TMP = tempfile.mkdtemp(prefix="authy2-tests-")
DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{_TMP}/test.db"
REDIS_URL = os.environ.get("TEST_REDIS_URL") or None
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def base_overrides(**extra) -> dict:
    overrides = {
        "SQLALCHEMY_DATABASE_URI": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "RATELIMIT_STORAGE_URI": REDIS_URL or "memory://",
        "KEYS_DIR": os.path.join(_TMP, "keys"),
        "MAIL_OUTBOX_DIR": os.path.join(_TMP, "outbox"),
        "BCRYPT_LOG_ROUNDS": 4,
        "WTF_CSRF_ENABLED": True,
    }
    overrides.update(extra)
    return overrides


def _make(overrides: dict):
    app = create_app(base_overrides(**overrides))
    if overrides.get("SQLALCHEMY_DATABASE_URI", DATABASE_URL).startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"check_same_thread": False}}
    return app


def stamp_migrations_head(application) -> None:
    """Record the migrations' head in alembic_version: create_all() made the models' tables, which
    are that head (tests/test_migrations.py proves it), so /api/health finds the schema current."""
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    config = Config()
    config.set_main_option("script_location", application.extensions["migrate"].directory)
    with application.app_context(), db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        MigrationContext.configure(connection).stamp(ScriptDirectory.from_config(config), "heads")


@pytest.fixture(scope="session")
def app():
    application = _make({})
    with application.app_context():
        db.drop_all()
        db.create_all()
        stamp_migrations_head(application)
    yield application


@pytest.fixture(autouse=True)
def _clean_state(request, app):
    """Each test starts with empty tables, fresh rate-limit and lockout counters and an empty replay cache."""
    yield
    with app.app_context():
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        limiter.reset()
        app.extensions["counters"].reset()
    if REDIS_URL:
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.fixture
def make_app(app):
    """Build another app on the same database with config overrides (e.g. small timeouts)."""
    made = []

    def factory(**overrides):
        other = _make(overrides)
        made.append(other)
        return other

    yield factory
    for other in made:
        with other.app_context():
            db.engine.dispose()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def factories(app):
    return Factories(app)


@pytest.fixture
def live_server(app):
    """The app served over HTTP on a loopback port, in a thread."""
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_sink():
    """A real SMTP server (aiosmtpd) on a loopback port, keeping every message it receives."""
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


def _require(marker: str, available: bool, why: str):
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{marker} test cannot run: {why} (REQUIRE_SERVICES=1)")
    pytest.skip(why)


@pytest.fixture(autouse=True)
def _service_markers(request):
    if request.node.get_closest_marker("postgres"):
        _require("postgres", DATABASE_URL.startswith("postgresql"), "TEST_DATABASE_URL is not PostgreSQL")
    if request.node.get_closest_marker("redis"):
        _require("redis", bool(REDIS_URL), "TEST_REDIS_URL is not set")


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the whole run (Playwright driving the Debian package); a second
    sync Playwright in the same run cannot start, so every browser test shares this one."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        if REQUIRE_SERVICES:
            pytest.fail("browser tests cannot run: chromium is not installed (REQUIRE_SERVICES=1)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser context (no cookies) and page for one test."""
    context = chromium.new_context()
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()
