"""Sign-in lockout that stops password guessing without locking the owner out.

OWASP "Slow Down Online Guessing Attacks with Device Cookies", adapted. One policy for every
password sign-in (hosted page, API login, the password proof of account linking), in the app's own
counters (`get_counters()`, Redis when configured), not the rate limiter's: it holds with
RATELIMIT_ENABLED=false. Failures count for one hour from the first, per

- pair (account, client address): from LOCKOUT_PAIR_THRESHOLD failures that address is refused for
  that account, 30 s doubling up to 15 min. An attacker's address locks only itself;
- address: from LOCKOUT_ADDRESS_THRESHOLD failures on any accounts the address is refused for every
  account, with the same delays (spraying one password over many accounts);
- account, from every address: from LOCKOUT_ACCOUNT_THRESHOLD failures the account is slowed down,
  never locked: untrusted clients share one password check per window of 1 s doubling up to 30 s,
  the others get a 429 with the rest of the window (never more than 30 s to wait);
- device: a device cookie that this account's password earned (idp.security.device_cookie) skips the
  pair lock and the slow-down; its own failures count instead, and from LOCKOUT_PAIR_THRESHOLD of
  them it is an untrusted client until its counter ends. The address limit applies to everyone.

Successes count nowhere. A success forgets the pair's failures, not the account's (an attacker may
still be guessing). Accounts are keyed by the canonical address typed, whether or not an account
has it, so no answer tells them apart. Nothing sleeps: a refusal answers at once with Retry-After.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from flask import current_app

from idp.services import audit
from idp.services.accounts import canonical_email
from idp.services.cache import get_counters

FIRST_LOCK = 30
MAX_LOCK = 15 * 60
FIRST_SLOWDOWN = 1
MAX_SLOWDOWN = 30
WINDOW = 60 * 60


@dataclass(frozen=True)
class Attempt:
    """A password sign-in attempt: the address typed, the client's address, and the nonce of a device
    cookie issued to the account that address names (None without one)."""

    email: str
    address: str
    device: str | None = None


@dataclass(frozen=True)
class Lock:
    """Why an attempt is refused (`pair`, `address` or `account_slowdown`) and for how many seconds."""

    scope: str
    retry_after: int


def delay_for(failures: int, threshold: int, first: int = FIRST_LOCK, cap: int = MAX_LOCK) -> int:
    """Seconds of lock (or slow-down window) after the `failures`-th failure: 0 below the threshold,
    `first` at it, doubling after, at most `cap`."""
    if failures < threshold:
        return 0
    return min(first * 2 ** min(failures - threshold, 32), cap)


def _thresholds() -> dict[str, int]:
    config = current_app.config
    return {"pair": config["LOCKOUT_PAIR_THRESHOLD"], "address": config["LOCKOUT_ADDRESS_THRESHOLD"],
            "account": config["LOCKOUT_ACCOUNT_THRESHOLD"], "device": config["LOCKOUT_PAIR_THRESHOLD"]}


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8", "replace")).hexdigest()[:32]


def _keys(attempt: Attempt) -> dict[str, str]:
    # The address in the form accounts look it up by (NFC, trimmed, lower-cased): every spelling
    # that reaches one account shares its counters.
    account, address = canonical_email(attempt.email), attempt.address.strip()
    keys = {"pair": f"lockout:pair:{_digest(account, address)}", "address": f"lockout:address:{_digest(address)}",
            "account": f"lockout:account:{_digest(account)}"}
    if attempt.device:
        keys["device"] = f"lockout:device:{_digest(attempt.device)}"
    return keys


def _failures(key: str) -> int:
    return get_counters().get(f"{key}:count")


def _trusted(keys: dict[str, str]) -> bool:
    return "device" in keys and _failures(keys["device"]) < _thresholds()["device"]


def _lock_of(scope: str, key: str) -> Lock | None:
    storage = get_counters()
    failures = _failures(key)
    if failures < _thresholds()[scope]:
        return None
    # The lock's end time is the stored value (not the key's TTL), so every store and clock agree.
    remaining = storage.get(f"{key}:until:{failures}") - time.time()
    return Lock(scope, math.ceil(remaining)) if remaining > 0 else None


def _slowdown(key: str) -> Lock | None:
    """None if this untrusted attempt may have the account's one password check of the current
    window (and takes it), else the seconds to the next window."""
    delay = delay_for(_failures(key), _thresholds()["account"], FIRST_SLOWDOWN, MAX_SLOWDOWN)
    if not delay:
        return None
    now = time.time()
    window = int(now // delay)
    if get_counters().incr(f"{key}:check:{delay}:{window}", delay + 1) == 1:
        return None
    return Lock("account_slowdown", max(1, math.ceil((window + 1) * delay - now)))


def refusal(attempt: Attempt) -> Lock | None:
    """The lock or slow-down refusing this attempt before any password check; None to go on."""
    keys = _keys(attempt)
    lock = _lock_of("address", keys["address"])
    if lock is not None or _trusted(keys):
        return lock
    return _lock_of("pair", keys["pair"]) or _slowdown(keys["account"])


def _count_failure(key: str) -> int:
    return get_counters().incr(f"{key}:count", WINDOW)


def _start_lock(key: str, failures: int, seconds: int) -> None:
    storage, until, name = get_counters(), int(time.time()) + seconds, f"{key}:until:{failures}"
    if storage.incr(name, seconds + 1, amount=until) != until:
        # A lock of an earlier round at this count (its failures were forgotten after a success)
        # still had a second to live: start this one afresh instead of adding to it.
        storage.clear(name)
        storage.incr(name, seconds + 1, amount=until)


def _count_toward_lock(scope: str, key: str) -> int:
    failures = _count_failure(key)
    seconds = delay_for(failures, _thresholds()[scope])
    if seconds:
        _start_lock(key, failures, seconds)
    return seconds


def _count_trusted_failure(keys: dict[str, str]) -> dict[str, int | None]:
    if _count_failure(keys["device"]) == _thresholds()["device"]:
        return {"device": None}  # from now on an untrusted client, until the device's counter ends
    return {}


def _count_untrusted_failure(keys: dict[str, str]) -> dict[str, int | None]:
    slowdown = delay_for(_count_failure(keys["account"]), _thresholds()["account"], FIRST_SLOWDOWN, MAX_SLOWDOWN)
    return {"pair": _count_toward_lock("pair", keys["pair"]), "account_slowdown": slowdown}


def record_failure(attempt: Attempt) -> Lock | None:
    """Count a failed attempt; audit each lock or slow-down it starts or extends (`login.locked` with
    its scope) and return the lock that refuses this client from now on, if any."""
    keys = _keys(attempt)
    counted = _count_trusted_failure(keys) if _trusted(keys) else _count_untrusted_failure(keys)
    started = {"address": _count_toward_lock("address", keys["address"]), **counted}
    for scope, seconds in started.items():
        if seconds != 0:
            details = {"scope": scope} if seconds is None else {"scope": scope, "seconds": seconds}
            audit.record_failure("login.locked", details=details)
    locks = [Lock(scope, started[scope]) for scope in ("address", "pair") if started.get(scope)]
    return max(locks, key=lambda lock: lock.retry_after) if locks else None


def record_success(attempt: Attempt) -> None:
    """Forget the pair's failures after a successful sign-in from an untrusted client (a trusted
    device's failures are its own, and its cookie is replaced)."""
    keys = _keys(attempt)
    if not _trusted(keys):
        get_counters().clear(f"{keys['pair']}:count")
