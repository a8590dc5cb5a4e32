"""Progressive lockout counters (idp.services.lockout)."""
from __future__ import annotations

import time_machine

from idp.services import lockout


def test_delay_doubles_from_the_threshold_and_is_capped():
    """No delay below the threshold, 30 s at it, doubling after, at most 15 minutes."""
    t = lockout.ACCOUNT_THRESHOLD
    assert lockout.delay_for(t - 1, t) == 0
    assert [lockout.delay_for(t + n, t) for n in range(3)] == [30, 60, 120]
    assert lockout.delay_for(t + 20, t) == lockout.MAX_DELAY


def test_lock_starts_at_the_threshold_and_ends_after_its_delay(ctx):
    """record_failure returns a lock at the threshold; current_lock reports it until it ends."""
    with time_machine.travel("2026-03-01 10:00:00", tick=False) as clock:
        locks = [lockout.record_failure("a@example.com", "198.51.100.7") for _ in range(lockout.ACCOUNT_THRESHOLD)]
        assert locks[:-1] == [None] * (lockout.ACCOUNT_THRESHOLD - 1)
        assert locks[-1] == lockout.Lock("account", lockout.FIRST_DELAY)
        assert lockout.current_lock("A@Example.com ", "203.0.113.9").scope == "account"
        clock.shift(lockout.FIRST_DELAY)
        assert lockout.current_lock("a@example.com", "203.0.113.9") is None


def test_success_forgets_the_account_failures(ctx):
    """record_success clears the address's counter."""
    for _ in range(lockout.ACCOUNT_THRESHOLD - 1):
        lockout.record_failure("b@example.com", "198.51.100.7")
    lockout.record_success("b@example.com")
    assert lockout.record_failure("b@example.com", "198.51.100.7") is None


def test_ip_lock_is_independent_of_addresses(ctx):
    """Failures spread over many addresses lock the IP once IP_THRESHOLD is reached."""
    for n in range(lockout.IP_THRESHOLD):
        lockout.record_failure(f"user{n}@example.com", "198.51.100.8")
    lock = lockout.current_lock("fresh@example.com", "198.51.100.8")
    assert lock is not None and lock.scope == "ip"
    assert lockout.current_lock("fresh@example.com", "198.51.100.9") is None


def test_unicode_spellings_of_one_address_share_one_counter(ctx):
    """NFC and NFD spellings of an address reach one account, so they count against one lock (UAX #15)."""
    nfc, nfd = "jos\u00e9@example.com", "jose\u0301@example.com"
    for n in range(lockout.ACCOUNT_THRESHOLD):
        lockout.record_failure(nfd if n % 2 else nfc, f"198.51.100.{n}")
    assert lockout.current_lock(nfc.upper(), "203.0.113.9").scope == "account"
