"""Sign-in lockout counters (idp.services.lockout): pair and address locks, account slow-down, devices."""
from __future__ import annotations

import time_machine
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent
from idp.services import lockout
from idp.services.lockout import Attempt, Lock

PAIR, ADDRESS, ACCOUNT = 5, 20, 10  # the default thresholds
ATTACKER, OWNER = "198.51.100.7", "203.0.113.9"


def _fail(email: str, address: str, times: int = 1, device: str | None = None) -> list[Lock | None]:
    return [lockout.record_failure(Attempt(email, address, device)) for _ in range(times)]


def _spread_failures(email: str, failures: int) -> None:
    """`failures` failures on one account, four per address, so no pair locks."""
    for n in range(failures):
        lockout.record_failure(Attempt(email, f"198.51.100.{100 + n // 4}"))


def _locked_scopes() -> list[str]:
    return [e.details["scope"] for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action == "login.locked"))]


def test_thresholds_default_to_five_twenty_and_ten(ctx):
    """The documented defaults: 5 per (account, address), 20 per address, 10 per account."""
    config = ctx.config
    assert (config["LOCKOUT_PAIR_THRESHOLD"], config["LOCKOUT_ADDRESS_THRESHOLD"],
            config["LOCKOUT_ACCOUNT_THRESHOLD"]) == (PAIR, ADDRESS, ACCOUNT)


def test_lock_delay_doubles_from_the_threshold_and_is_capped():
    """No delay below the threshold, 30 s at it, doubling after, at most 15 minutes."""
    assert lockout.delay_for(PAIR - 1, PAIR) == 0
    assert [lockout.delay_for(PAIR + n, PAIR) for n in range(3)] == [30, 60, 120]
    assert lockout.delay_for(PAIR + 10_000, PAIR) == lockout.MAX_LOCK


def test_slowdown_window_doubles_from_one_second_to_thirty():
    """The account-wide slow-down spaces checks 1 s apart at its threshold, doubling, never above 30 s."""
    windows = [lockout.delay_for(ACCOUNT + n, ACCOUNT, lockout.FIRST_SLOWDOWN, lockout.MAX_SLOWDOWN) for n in range(7)]
    assert windows == [1, 2, 4, 8, 16, 30, 30]


def test_pair_lock_refuses_that_address_only_until_it_ends(ctx):
    """The PAIR-th failure locks (account, address) for 30 s; the same account from another address is free."""
    with time_machine.travel("2026-03-01 10:00:00", tick=False) as clock:
        locks = _fail("bob@example.com", ATTACKER, PAIR)
        assert locks == [None] * (PAIR - 1) + [Lock("pair", 30)]
        assert lockout.refusal(Attempt("Bob@Example.com ", ATTACKER)) == Lock("pair", 30)
        assert lockout.refusal(Attempt("bob@example.com", OWNER)) is None
        assert lockout.refusal(Attempt("carol@example.com", ATTACKER)) is None
        clock.shift(30)
        assert lockout.refusal(Attempt("bob@example.com", ATTACKER)) is None
    assert _locked_scopes() == ["pair"]


def test_address_lock_covers_every_account(ctx):
    """Failures spread over many accounts lock the address for all of them, and for no other address."""
    for n in range(ADDRESS):
        lockout.record_failure(Attempt(f"user{n}@example.com", "198.51.100.8"))
    assert lockout.refusal(Attempt("fresh@example.com", "198.51.100.8")).scope == "address"
    assert lockout.refusal(Attempt("fresh@example.com", "198.51.100.9")) is None


def test_account_slowdown_allows_one_check_per_window(ctx):
    """From ACCOUNT failures over many addresses, untrusted clients share one check per window (at most 30 s),
    the others get the rest of the window; nobody is refused longer."""
    with time_machine.travel("2026-03-01 10:00:00", tick=False) as clock:
        _spread_failures("bob@example.com", ACCOUNT + 5)  # the window is at its 30 s cap
        assert lockout.refusal(Attempt("bob@example.com", OWNER)) is None  # this window's check
        assert lockout.refusal(Attempt("bob@example.com", "192.0.2.1")) == Lock("account_slowdown", 30)
        clock.shift(12)
        assert lockout.refusal(Attempt("bob@example.com", "192.0.2.1")) == Lock("account_slowdown", 18)
        clock.shift(18)
        assert lockout.refusal(Attempt("bob@example.com", "192.0.2.1")) is None
        assert lockout.refusal(Attempt("carol@example.com", "192.0.2.1")) is None
    assert "account_slowdown" in _locked_scopes()


def test_a_trusted_device_skips_the_pair_lock_and_the_slowdown(ctx):
    """A device cookie of the account is let through where its address and the account are held back."""
    _spread_failures("bob@example.com", ACCOUNT + 5)
    _fail("bob@example.com", ATTACKER, PAIR)
    assert lockout.refusal(Attempt("bob@example.com", ATTACKER)).scope == "pair"
    assert lockout.refusal(Attempt("bob@example.com", ATTACKER, device="bobs-laptop")) is None
    assert lockout.refusal(Attempt("bob@example.com", "192.0.2.1", device="bobs-laptop")) is None


def test_a_device_stops_being_trusted_after_its_own_failures(ctx):
    """OWASP device cookies: PAIR failures with one device cookie make it an untrusted client (audited)."""
    _spread_failures("bob@example.com", ACCOUNT + 5)
    assert lockout.refusal(Attempt("bob@example.com", OWNER)) is None  # the window's one check
    assert _fail("bob@example.com", OWNER, PAIR, device="stolen") == [None] * PAIR
    assert lockout.refusal(Attempt("bob@example.com", OWNER, device="stolen")).scope == "account_slowdown"
    assert lockout.refusal(Attempt("bob@example.com", OWNER, device="bobs-laptop")) is None
    assert "device" in _locked_scopes()


def test_the_address_lock_holds_for_trusted_devices_too(ctx):
    """A device cookie never lifts the per-address lock (spraying from one address stays stopped)."""
    for n in range(ADDRESS):
        lockout.record_failure(Attempt(f"user{n}@example.com", ATTACKER))
    assert lockout.refusal(Attempt("bob@example.com", ATTACKER, device="bobs-laptop")).scope == "address"


def test_success_forgets_the_pair_but_not_the_account(ctx):
    """A success clears the (account, address) failures; the account-wide count goes on (the attacker may not stop)."""
    with time_machine.travel("2026-03-01 10:00:00", tick=False):
        _spread_failures("bob@example.com", ACCOUNT + 5)
        _fail("bob@example.com", OWNER, PAIR - 1)
        lockout.record_success(Attempt("bob@example.com", OWNER))
        assert _fail("bob@example.com", OWNER, PAIR - 1) == [None] * (PAIR - 1)
        assert lockout.refusal(Attempt("bob@example.com", "192.0.2.1")) is None  # this window's check
        assert lockout.refusal(Attempt("bob@example.com", "192.0.2.2")).scope == "account_slowdown"


def test_a_new_lock_at_the_count_of_a_forgotten_one_starts_afresh(ctx):
    """Failures forgotten after a success and counted again lock for the normal delay, not the two added up."""
    with time_machine.travel("2026-03-01 10:00:00", tick=False):
        _fail("bob@example.com", ATTACKER, PAIR)
        lockout.record_success(Attempt("bob@example.com", ATTACKER))
        assert _fail("bob@example.com", ATTACKER, PAIR)[-1] == Lock("pair", 30)
        assert lockout.refusal(Attempt("bob@example.com", ATTACKER)) == Lock("pair", 30)


def test_unicode_spellings_of_one_address_share_one_counter(ctx):
    """NFC and NFD spellings of an address reach one account, so they count against one lock (UAX #15)."""
    nfc, nfd = "jos\u00e9@example.com", "jose\u0301@example.com"
    for n in range(PAIR):
        lockout.record_failure(Attempt(nfd if n % 2 else nfc, ATTACKER))
    assert lockout.refusal(Attempt(nfc.upper(), ATTACKER)).scope == "pair"
