"""Which client rows a worker may still serve from its cache: a generation that changes, after the
transaction commits, every time any client changes.

Two parts: this process's own counter (a change made here is seen here at once), and with REDIS_URL a
random value under one Redis key that every worker and node reads on each cached lookup (a change
anywhere is seen everywhere at once). Random rather than INCR, so a Redis that restarts empty can never
bring an old value back. A change is announced only after COMMIT: a reader that sees the new value
reads the new row.
"""
from __future__ import annotations

import itertools
import logging
import os
import secrets
import threading
from dataclasses import dataclass

import redis

from flask import current_app, has_app_context
from sqlalchemy import event

from idp.extensions import db
from idp.services.cache import get_redis
from idp.services.redis_guard import RedisDown

logger = logging.getLogger(__name__)

GENERATION_KEY = "authy2:clients:generation"
_PENDING = "client_changes_pending"
_LOCAL = "client_generation"
_READER = "client_generation_reader"


@dataclass(frozen=True)
class Generation:
    """The generation as one lookup saw it; `shared` None when Redis is not configured or is down."""

    local: int
    shared: str | None


def client_changed() -> None:
    """Announce, once the current transaction commits, that a client changed (created, updated,
    rotated, deactivated or deleted). Nothing is announced if it rolls back."""
    db.session.info[_PENDING] = True


def current_generation() -> Generation:
    """This process's counter and the shared Redis value ("" when never set)."""
    shared = None
    guard = get_redis()
    if guard is not None:
        try:
            value = guard.call(_shared_reader().read)
            shared = value.decode() if isinstance(value, bytes) else (value or "")
        except RedisDown:
            shared = None
    return Generation(_local_counter().value, shared)


class SharedGenerationReader:
    """GET of the shared generation over a Redis connection of the calling thread's own.

    Every cached client lookup reads the generation, and taking a connection out of redis-py's pool
    and putting it back costs twice the round trip itself. The connection is made by the client's
    pool (same address, timeouts and credentials), never shared between threads or across a fork,
    and dropped on any error so that the next read starts on a fresh one.
    """

    def __init__(self):
        self._local = threading.local()

    def read(self, client: redis.Redis):
        local = self._local
        connection = getattr(local, "connection", None)
        if connection is not None and local.owner == (os.getpid(), client.connection_pool):
            try:
                return self._get(connection)
            except redis.ConnectionError:
                # Closed while idle (a Redis restart or idle timeout): one fresh connection, as the pool's
                # own checkout reconnects once.
                pass
        local.connection, local.owner = client.connection_pool.make_connection(), (os.getpid(), client.connection_pool)
        return self._get(local.connection)

    def _get(self, connection):
        try:
            connection.send_command("GET", GENERATION_KEY)
            return connection.read_response()
        except BaseException:
            connection.disconnect()
            self._local.connection = None
            raise


def _shared_reader() -> SharedGenerationReader:
    return current_app.extensions.setdefault(_READER, SharedGenerationReader())


class _Counter:
    def __init__(self):
        self._values = itertools.count(1)
        self.value = 0

    def bump(self) -> None:
        self.value = next(self._values)  # itertools.count is atomic under the GIL


def _local_counter() -> _Counter:
    counters = current_app.extensions.setdefault(_LOCAL, _Counter())
    return counters


def _announce() -> None:
    _local_counter().bump()
    guard = get_redis()
    if guard is None:
        return
    try:
        guard.call(lambda client: client.set(GENERATION_KEY, secrets.token_hex(8)))
    except RedisDown:
        # Other workers fall back to entries at most a second old while they cannot read Redis either.
        logger.warning("client change not announced on Redis (unreachable); other workers may serve the old "
                       "client until their cache entry expires")


@event.listens_for(db.session, "after_commit")
def _after_commit(session) -> None:
    if session.info.pop(_PENDING, False) and has_app_context():
        _announce()


@event.listens_for(db.session, "after_rollback")
def _after_rollback(session) -> None:
    session.info.pop(_PENDING, None)
