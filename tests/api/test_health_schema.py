"""GET /api/health and the database schema: 503 while the database is behind the migrations' head."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from idp.extensions import db
from tests.api.envelope_assertions import assert_error, assert_success
from tests.conftest import stamp_migrations_head


@pytest.fixture
def fresh_app(app, make_app):
    """Another app on the test database (its own schema check, nothing cached); the head is stamped
    back afterwards, whatever the test did to alembic_version."""
    yield make_app()
    stamp_migrations_head(app)


def _set_revisions(app, *revisions: str) -> None:
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(text("DELETE FROM alembic_version"))
        for revision in revisions:
            connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": revision})


def test_schema_at_head_is_healthy(client):
    """The test database is at the migrations' head: 200 with schema ok."""
    body = assert_success(client.get("/api/health"))
    assert body["data"]["schema"] == "ok" and body["data"]["database"] == "ok"


def test_database_never_migrated_is_503_naming_the_schema(app, fresh_app):
    """Tables without alembic_version (made some other way) are not a migrated schema: 503, schema behind."""
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
    body = assert_error(fresh_app.test_client().get("/api/health"), 503, "SERVICE_UNAVAILABLE")
    assert body["error"]["details"]["schema"] == "behind" and body["error"]["details"]["database"] == "ok"
    assert body["message"] == "The database schema is behind the migrations."


def test_older_revision_is_503_until_upgraded(app, fresh_app):
    """A database at an older revision answers 503 schema behind; once at head, the next check says ok."""
    client = fresh_app.test_client()
    _set_revisions(app, "0004")
    assert_error(client.get("/api/health"), 503, "SERVICE_UNAVAILABLE")
    stamp_migrations_head(app)
    assert assert_success(client.get("/api/health"))["data"]["schema"] == "ok"


def test_revision_from_newer_code_is_unknown_not_an_outage(app, fresh_app):
    """A revision these migrations do not know (a newer deploy migrated first) is reported, not a 503."""
    _set_revisions(app, "ffffffffffff")
    body = assert_success(fresh_app.test_client().get("/api/health"))
    assert body["data"]["schema"] == "unknown"


def test_schema_at_head_is_not_read_again_on_every_poll(app, fresh_app):
    """Health is polled: a schema once found at head is not re-read within SCHEMA_AT_HEAD_SECONDS."""
    client = fresh_app.test_client()
    assert assert_success(client.get("/api/health"))["data"]["schema"] == "ok"
    _set_revisions(app, "0004")
    assert assert_success(client.get("/api/health"))["data"]["schema"] == "ok"
