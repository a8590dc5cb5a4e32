"""Dependency checks for the health endpoint."""
from __future__ import annotations

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


def redis_status() -> str:
    """'ok', 'down', or 'not_configured' (the embedded default keeps no Redis)."""
    client = get_redis()
    if client is None:
        return "not_configured"
    try:
        client.ping()
        return "ok"
    except Exception:
        current_app.logger.warning("health: redis ping failed")
        return "down"
