"""One-time use of assertions until they expire: SAML assertion ids (SAML 2.0 Profiles 4.1.4.5) and
client assertion `jti`s (RFC 7523 3). Redis SET NX EX while Redis answers; else the seen_assertions
table, whose upsert lets exactly one of any number of workers win a key. Either way every worker agrees.

The use is committed at once: an assertion presented is spent, whatever the rest of the request
decides, so a refused attempt cannot be retried with the same assertion.
"""
from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

from idp.models import SeenAssertion, utcnow
from idp.services import expiry
from idp.services.cache import get_redis
from idp.services.own_transaction import execute_committed, upsert
from idp.services.redis_guard import RedisDown

# How long a key is remembered when the upstream gave no expiry (an assertion without NotOnOrAfter).
DEFAULT_MEMORY = timedelta(days=1)
# The namespace of client assertions (an upstream's id namespaces its SAML assertions).
CLIENT_ASSERTION = "client-assertion"


def _key_hash(namespace: str, key: str) -> str:
    return hashlib.sha256(f"{namespace}\x00{key}".encode("utf-8", "replace")).hexdigest()


def use_once(upstream_id: str, key: str, until: datetime | None = None) -> bool:
    """True the first time `key` (an assertion id) of this upstream is used; False on a replay.

    Keyed by upstream as well: assertion ids are unique per issuer only.
    """
    now = utcnow()
    return _first_use(_key_hash(upstream_id, key), until if until is not None and until > now else now + DEFAULT_MEMORY)


def remember_once(key: str, ttl: int) -> bool:
    """True the first time a client assertion `key` is seen within `ttl` seconds, False on a replay."""
    return _first_use(_key_hash(CLIENT_ASSERTION, key), utcnow() + timedelta(seconds=max(ttl, 1)))


def _first_use(key_hash: str, expires_at: datetime) -> bool:
    guard = get_redis()
    if guard is not None:
        ttl = max(1, math.ceil((expires_at - utcnow()).total_seconds()))
        try:
            return bool(guard.call(lambda client: client.set(f"authy2:assertion:{key_hash}", b"1", nx=True, ex=ttl)))
        except RedisDown:
            pass
    return _first_use_in_database(key_hash, expires_at)


def _first_use_in_database(key_hash: str, expires_at: datetime) -> bool:
    # A row past its expiry (not yet purged) is taken over; a live one is left alone and nothing returns.
    table = SeenAssertion.__table__
    insert = upsert(table).values(key_hash=key_hash, expires_at=expires_at)
    statement = insert.on_conflict_do_update(
        index_elements=[table.c.key_hash], set_={"expires_at": insert.excluded.expires_at},
        where=table.c.expires_at <= utcnow(),
    ).returning(table.c.key_hash)
    return execute_committed(statement, lambda result: result.first() is not None)


def purge_expired(now: datetime | None = None, limit: int | None = None) -> int:
    """Forget at most `limit` (JOB_PURGE_BATCH) assertions past their expiry (the job runner calls this)."""
    table = SeenAssertion.__table__
    return expiry.delete_batch(table, table.c.expires_at < (now or utcnow()), expiry.batch_size(limit))
