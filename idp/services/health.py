"""Dependency checks for the health endpoint."""
from __future__ import annotations

import time

from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import text

from idp.extensions import db
from idp.services.cache import get_redis


def database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception:  # any driver error means "down" here; the cause goes to the log
        current_app.logger.exception("health: database check failed")
        db.session.rollback()
        return False


# A schema found at head stays there until the next deploy; health is polled, so it is re-read at
# most this often (a schema behind is re-read on every check, so the fix shows at once).
SCHEMA_AT_HEAD_SECONDS = 30


class SchemaCheck:
    """The migrations' head revisions (read once per process from the migrations directory) against
    the revisions in the database's alembic_version table."""

    def __init__(self, migrations_dir: str):
        config = AlembicConfig()
        config.set_main_option("script_location", migrations_dir)
        scripts = ScriptDirectory.from_config(config)
        self.heads = frozenset(scripts.get_heads())
        self.known = frozenset(revision.revision for revision in scripts.walk_revisions())
        self._at_head_until = 0.0

    def status(self) -> str:
        if time.monotonic() < self._at_head_until:
            return "ok"
        current = frozenset(MigrationContext.configure(db.session.connection()).get_current_heads())
        if current == self.heads:
            self._at_head_until = time.monotonic() + SCHEMA_AT_HEAD_SECONDS
            return "ok"
        # A revision these migrations do not know was made by newer code (a deploy rolling forward).
        return "unknown" if current - self.known else "behind"


def schema_status() -> str:
    """'ok' at the migrations' head; 'behind' when the database lacks a migration (or was never
    migrated: no alembic_version); 'unknown' when it cannot be told (no migrations directory, a
    revision from newer code, a failing query)."""
    try:
        check = current_app.extensions.get("schema_check")
        if check is None:
            check = current_app.extensions["schema_check"] = SchemaCheck(current_app.extensions["migrate"].directory)
        return check.status()
    except Exception:  # the cause goes to the log; health still answers
        current_app.logger.warning("health: schema check failed", exc_info=True)
        db.session.rollback()
        return "unknown"


def redis_status() -> str:
    """'ok', 'down' (counters and replay caches on the database meanwhile), or 'not_configured'.

    One ping with the short timeout, whatever the breaker says; the answer also sets this worker's
    breaker, so it goes back to Redis as soon as a health check sees Redis answer.
    """
    guard = get_redis()
    if guard is None:
        return "not_configured"
    return "ok" if guard.probe() else "down"
