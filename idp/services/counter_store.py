"""Expiring counters with the interface of a `limits` Storage (incr, get, clear, reset): in Redis while
it answers, in the `counters` table otherwise, so every worker and node counts the same."""
from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Callable, TypeVar

from limits.storage import Storage
from sqlalchemy import case, delete, select

from idp.extensions import db
from idp.models import Counter, utcnow
from idp.services import expiry
from idp.services.own_transaction import execute_committed, upsert
from idp.services.redis_guard import RedisDown, RedisGuard

T = TypeVar("T")
KEY_LENGTH = Counter.__table__.c.key.type.length


def _stored_key(key: str) -> str:
    # Callers hash what they count by; a longer key still fits, as its digest.
    return key if len(key) <= KEY_LENGTH else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class DatabaseCounters:
    """Counters in the database; each write is one atomic statement, committed at once."""

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add `amount`; a counter past its expiry starts again from `amount` for `expiry` seconds."""
        now = utcnow()
        table = Counter.__table__
        insert = upsert(table).values(key=_stored_key(key), value=amount,
                                      expires_at=now + timedelta(seconds=expiry))
        expired = table.c.expires_at <= now
        statement = insert.on_conflict_do_update(index_elements=[table.c.key], set_={
            "value": case((expired, insert.excluded.value), else_=table.c.value + insert.excluded.value),
            "expires_at": case((expired, insert.excluded.expires_at), else_=table.c.expires_at),
        }).returning(table.c.value)
        return execute_committed(statement, lambda result: int(result.scalar_one()))

    def get(self, key: str) -> int:
        table = Counter.__table__
        value = db.session.execute(select(table.c.value).where(
            table.c.key == _stored_key(key), table.c.expires_at > utcnow())).scalar()
        return int(value or 0)

    def clear(self, key: str) -> None:
        table = Counter.__table__
        execute_committed(delete(table).where(table.c.key == _stored_key(key)))

    def reset(self) -> int:
        return execute_committed(delete(Counter.__table__), lambda result: result.rowcount)

    def purge_expired(self, limit: int | None = None) -> int:
        """Delete at most `limit` (JOB_PURGE_BATCH) counters past their expiry (they already read as 0);
        the job runner calls this."""
        table = Counter.__table__
        return expiry.delete_batch(table, table.c.expires_at <= utcnow(), expiry.batch_size(limit))


class Counters:
    """Redis (a `limits` RedisStorage) through the breaker when configured, else the database."""

    def __init__(self, database: DatabaseCounters, redis_storage: Storage | None = None,
                 guard: RedisGuard | None = None):
        self.database = database
        self._redis = redis_storage
        self._guard = guard

    def _use(self, operation: Callable[[Storage | DatabaseCounters], T]) -> T:
        if self._redis is not None:
            try:
                return self._guard.call(lambda client: operation(self._redis))
            except RedisDown:
                pass
        return operation(self.database)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._use(lambda store: store.incr(key, expiry, amount))

    def get(self, key: str) -> int:
        return self._use(lambda store: store.get(key))

    def clear(self, key: str) -> None:
        self._use(lambda store: store.clear(key))

    def purge_expired(self, limit: int | None = None) -> int:
        """Delete at most `limit` of the database's expired counters (Redis expires its own)."""
        return self.database.purge_expired(limit)

    def reset(self) -> int:
        """Forget every counter, in Redis (when it answers) and in the database."""
        if self._redis is not None:
            try:
                self._guard.call(lambda client: self._redis.reset())
            except RedisDown:
                pass
        return self.database.reset()
