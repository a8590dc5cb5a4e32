"""Which client rows a worker may still serve from its cache: a generation that changes, after the
transaction commits, every time any client changes.

Two parts: this process's own counter (a change made here is seen here at once), and with REDIS_URL a
random value under one Redis key that every worker and node reads at most every SHARED_RECHECK_SECONDS
(a change anywhere is seen everywhere within that, well inside the one second the two-node setup
promises; a change announced by this process makes its next lookup read the key again). Random rather
than INCR, so a Redis that restarts empty can never bring an old value back. A change is announced
only after COMMIT: a reader that sees the new value reads the new row.
"""
from __future__ import annotations

import itertools
import logging
import os
import secrets
import threading
import time
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

# How long a worker serves the shared generation it last read before reading it again: a Redis GET
# per token request cost about a tenth of the request, and one per 100 ms per worker costs nothing.
SHARED_RECHECK_SECONDS = 0.1


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
    """This process's counter and the shared Redis value ("" when never set), the latter as read at
    most SHARED_RECHECK_SECONDS ago."""
    extensions = current_app.extensions
    guard = get_redis()
    shared = None if guard is None else _shared_reader(extensions).recent(guard)
    return Generation(_local_counter(extensions).value, shared)


class SharedGenerationReader:
    """The shared generation, read again once SHARED_RECHECK_SECONDS have passed or this process
    announced a change since; each GET over a Redis connection of the calling thread's own.

    Taking a connection out of redis-py's pool and putting it back costs twice the round trip
    itself. The connection is made by the client's pool (same address, timeouts and credentials),
    never shared between threads or across a fork, and dropped on any error so that the next read
    starts on a fresh one. "Redis down" (None) is remembered like a value: the guard's breaker decides
    when Redis is tried again, and entries read meanwhile are trusted a second only.
    """

    def __init__(self):
        self._local = threading.local()
        # (monotonic time the GET was sent, this process's announcements then, the value or None)
        self._last: tuple[float, int, str | None] = (float("-inf"), -1, None)

    def recent(self, guard) -> str | None:
        read_at, announcements, value = self._last
        now = time.monotonic()
        if now - read_at < SHARED_RECHECK_SECONDS and announcements == _PROCESS_ANNOUNCEMENTS.value:
            return value
        announcements = _PROCESS_ANNOUNCEMENTS.value  # taken before the GET: a later change re-reads
        try:
            raw = guard.call(self.read)
            value = raw.decode() if isinstance(raw, bytes) else (raw or "")
        except RedisDown:
            value = None
        self._last = (now, announcements, value)
        return value

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


def _shared_reader(extensions: dict) -> SharedGenerationReader:
    reader = extensions.get(_READER)
    return reader if reader is not None else extensions.setdefault(_READER, SharedGenerationReader())


class _Counter:
    def __init__(self):
        self._values = itertools.count(1)
        self.value = 0

    def bump(self) -> None:
        self.value = next(self._values)  # itertools.count is atomic under the GIL


# Changes announced by any app of this process: each app's reader then reads the shared value again
# at its next lookup rather than serving the one it read before the change.
_PROCESS_ANNOUNCEMENTS = _Counter()


def _local_counter(extensions: dict) -> _Counter:
    counter = extensions.get(_LOCAL)
    return counter if counter is not None else extensions.setdefault(_LOCAL, _Counter())


def _announce() -> None:
    _local_counter(current_app.extensions).bump()
    guard = get_redis()
    if guard is None:
        return
    try:
        guard.call(lambda client: client.set(GENERATION_KEY, secrets.token_hex(8)))
        _PROCESS_ANNOUNCEMENTS.bump()
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
