"""Progressive lockout of password sign-in, per account and per client IP.

Counters live in the app's own counter storage (Redis when configured, so every worker agrees;
in-process otherwise), not the rate limiter's: lockout is a security control and holds with
RATELIMIT_ENABLED=false. After ACCOUNT_THRESHOLD failures for one email address (whether or not an account has it, so a lock never
reveals one) each further failure locks that address for a doubling delay, from 30 s up to 15 min;
the same holds per client IP after IP_THRESHOLD failures. A success clears the account's counter.
Failures are counted within a window of one hour from the first.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from idp.services import audit
from idp.services.cache import get_counters
from idp.services.accounts import canonical_email

ACCOUNT_THRESHOLD = 5
IP_THRESHOLD = 20
FIRST_DELAY = 30
MAX_DELAY = 15 * 60
WINDOW = 60 * 60


@dataclass(frozen=True)
class Lock:
    scope: str
    retry_after: int

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))


def _key(scope: str, value: str) -> str:
    # The address in the form accounts look it up by (NFC, trimmed, lower-cased): every spelling
    # that reaches one account shares one counter.
    canonical = canonical_email(value) if scope == "account" else value.strip()
    digest = hashlib.sha256(canonical.encode("utf-8", "replace")).hexdigest()[:32]
    return f"lockout:{scope}:{digest}"


def _threshold(scope: str) -> int:
    return ACCOUNT_THRESHOLD if scope == "account" else IP_THRESHOLD


def delay_for(failures: int, threshold: int) -> int:
    """Seconds locked after the `failures`-th failure (0 below the threshold)."""
    if failures < threshold:
        return 0
    return min(FIRST_DELAY * 2 ** (failures - threshold), MAX_DELAY)


def _lock_of(scope: str, value: str) -> Lock | None:
    storage = get_counters()
    key = _key(scope, value)
    failures = storage.get(f"{key}:count")
    if failures < _threshold(scope):
        return None
    # The lock's end time is the stored value (not the key's TTL), so every store and clock agree.
    until = storage.get(f"{key}:until:{failures}")
    remaining = until - time.time()
    return Lock(scope, math.ceil(remaining)) if remaining > 0 else None


def current_lock(email: str, ip: str) -> Lock | None:
    """The lock in force for this email address or client IP, the longer one first; None if free."""
    locks = [lock for lock in (_lock_of("account", email), _lock_of("ip", ip)) if lock]
    return max(locks, key=lambda lock: lock.retry_after) if locks else None


def _count_failure(scope: str, value: str) -> int:
    storage = get_counters()
    key = _key(scope, value)
    failures = storage.incr(f"{key}:count", WINDOW)
    delay = delay_for(failures, _threshold(scope))
    if delay:
        storage.incr(f"{key}:until:{failures}", delay + 1, amount=int(time.time()) + delay)
    return delay


def record_failure(email: str, ip: str, user_id: str | None = None) -> Lock | None:
    """Count a failed sign-in for the address and the IP; audit and return a lock that starts now."""
    account_delay = _count_failure("account", email)
    ip_delay = _count_failure("ip", ip)
    if not account_delay and not ip_delay:
        return None
    scope = "account" if account_delay >= ip_delay else "ip"
    lock = Lock(scope, max(account_delay, ip_delay))
    audit.record_failure("login.locked", actor_user_id=user_id, target_type="user" if user_id else None,
                         target_id=user_id, details={"scope": scope, "seconds": lock.retry_after})
    return lock


def record_success(email: str) -> None:
    """Forget the address's failures after a successful sign-in."""
    get_counters().clear(f"{_key('account', email)}:count")
