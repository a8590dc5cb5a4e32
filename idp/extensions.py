"""Shared extension objects, bound to an app in create_app()."""
from __future__ import annotations

import time

from flask_cors import CORS
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.pool import Pool
from sqlalchemy.orm import DeclarativeBase

from idp.security.client_ip import client_ip

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdentityProviderSQLAlchemy(SQLAlchemy):
    def _teardown_session(self, exc: BaseException | None) -> None:
        """Flask-SQLAlchemy's session removal, skipped when the request never opened a session (a token
        request served from the client cache): scoped_session.remove() then only finds that out by
        raising and catching a KeyError."""
        if self.session.registry.has():
            self.session.remove()


db = IdentityProviderSQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True)
csrf = CSRFProtect()
cors = CORS()
limiter = Limiter(key_func=client_ip, default_limits=[])


@event.listens_for(Engine, "connect")
def _enforce_sqlite_foreign_keys(dbapi_connection, connection_record):
    """SQLite ignores foreign keys (and so ON DELETE CASCADE) unless asked, per connection."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


class IdleConnectionPing:
    """Ping a pooled connection before handing it out only when it sat unused for `idle_seconds`.

    pool_pre_ping pays a SELECT 1 round trip on every checkout. Under load a connection is back in use
    within milliseconds, so a ping then buys nothing the request's own first statement would not find
    out (a dead connection there answers 503 with Retry-After, and SQLAlchemy discards the pool's older
    connections). A connection left idle is the one a database restart during a quiet spell kills:
    that one is pinged, and a dead one makes the pool discard every connection it opened before and
    connect afresh, so the first request after the restart succeeds.
    """

    def __init__(self, idle_seconds: float):
        self.idle_seconds = idle_seconds

    def note_checkin(self, dbapi_connection, connection_record) -> None:
        connection_record.info["checked_in_at"] = time.monotonic()

    def check_on_checkout(self, dbapi_connection, connection_record, connection_proxy) -> None:
        checked_in_at = connection_record.info.pop("checked_in_at", None)
        if checked_in_at is None or time.monotonic() - checked_in_at < self.idle_seconds:
            return  # a fresh connection, or one in use moments ago
        if not self.ping(dbapi_connection):
            raise InvalidatePoolError("a pooled connection was found dead after sitting idle")

    def ping(self, dbapi_connection) -> bool:
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()  # the request gets the connection outside a transaction, as unpinged
        except Exception:  # any driver error: this connection cannot serve a request
            return False
        return True


idle_connection_ping = IdleConnectionPing(idle_seconds=1.0)
event.listen(Pool, "checkin", idle_connection_ping.note_checkin)
event.listen(Pool, "checkout", idle_connection_ping.check_on_checkout)
