"""One-time use of upstream assertions (SAML 2.0 Profiles 4.1.4.5: an assertion used once, until it
expires): Redis SET NX EX when REDIS_URL is set, so every worker agrees; else the seen_assertions table,
whose primary key makes the second insert of a key fail."""
from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.models import SeenAssertion, utcnow
from idp.services.cache import get_redis

# How long a key is remembered when the upstream gave no expiry (an assertion without NotOnOrAfter).
DEFAULT_MEMORY = timedelta(days=1)


def _key_hash(upstream_id: str, key: str) -> str:
    # Keyed by upstream as well: assertion ids are unique per issuer only.
    return hashlib.sha256(f"{upstream_id}\x00{key}".encode("utf-8", "replace")).hexdigest()


def use_once(upstream_id: str, key: str, until: datetime | None = None) -> bool:
    """True the first time `key` (an assertion id) of this upstream is used; False on a replay.

    The use is committed at once in the database case: an assertion presented is spent, whatever the
    rest of the sign-in decides, so a refused attempt cannot be retried with the same assertion.
    """
    now = utcnow()
    expires_at = until if until is not None and until > now else now + DEFAULT_MEMORY
    key_hash = _key_hash(upstream_id, key)
    client = get_redis()
    if client is not None:
        ttl = max(1, math.ceil((expires_at - now).total_seconds()))
        return bool(client.set(f"authy2:assertion:{key_hash}", b"1", nx=True, ex=ttl))
    try:
        with db.session.begin_nested():
            db.session.add(SeenAssertion(key_hash=key_hash, expires_at=expires_at))
    except IntegrityError:
        return False
    db.session.commit()
    return True


def purge_expired(now: datetime | None = None) -> int:
    """Forget assertion ids past their expiry (the job runner calls this)."""
    table = SeenAssertion.__table__
    return db.session.execute(table.delete().where(table.c.expires_at < (now or utcnow()))).rowcount
