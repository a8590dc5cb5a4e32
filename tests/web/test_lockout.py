"""Sign-in lockout on the hosted login page: an attacker's address locks only itself, the account slows
down instead of locking, and the owner's browser (device cookie) always gets in."""
from __future__ import annotations

import pytest
import time_machine
from playwright.sync_api import expect
from sqlalchemy import select

from idp.extensions import db, limiter
from idp.models import AuditEvent
from idp.security.device_cookie import PLAIN_COOKIE as DEVICE_COOKIE
from tests.factories import DEFAULT_PASSWORD
from tests.web.helpers import submit

PAIR, ADDRESS, ACCOUNT = 5, 20, 10  # the default thresholds
ATTACKER, HOME, CAFE = "198.51.100.66", "203.0.113.7", "192.0.2.44"
WRONG = "wrong-password-1"


def sign_in_from(client, address: str, email: str, password: str = DEFAULT_PASSWORD):
    """POST the sign-in form as a browser at `address` would."""
    return submit(client, "/login", {"email": email, "password": password}, action="/login",
                  environ_base={"REMOTE_ADDR": address})


def _fail(client, address: str, email: str, times: int):
    return [sign_in_from(client, address, email, WRONG) for _ in range(times)]


def _browser_of(app, email: str, address: str = HOME):
    """A browser that signed in once (it holds a device cookie) and signed out again."""
    browser = app.test_client()
    assert sign_in_from(browser, address, email).status_code == 302
    assert browser.get_cookie(DEVICE_COOKIE) is not None
    browser.delete_cookie("authy2_session")
    return browser


def _push_into_slowdown(app, email: str, failures: int = ACCOUNT + 6) -> None:
    """Failures from attacker addresses, four each (no pair lock): with ACCOUNT + 6 in all the slow-down is
    at its 30 s cap and the last failure took this window's one check."""
    attacker = app.test_client()
    for n in range(failures):
        assert sign_in_from(attacker, f"198.51.100.{10 + n // 4}", email, WRONG).status_code == 401


def _locked_scopes(app) -> list[str]:
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "login.locked"))
        return [e.details["scope"] for e in events]


def test_an_attacker_address_locks_only_itself(app, factories):
    """The issue's test: an address that exhausts its attempts on bob is refused (429, even with the right
    password), while bob signs in from his own browser and from any other address."""
    bob = factories.user()
    browser = _browser_of(app, bob.email)
    attacker = app.test_client()
    with time_machine.travel("2026-12-24 10:00:00", tick=False):
        responses = _fail(attacker, ATTACKER, bob.email, PAIR)
        assert [r.status_code for r in responses] == [401] * (PAIR - 1) + [429]
        refused = sign_in_from(attacker, ATTACKER, bob.email)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) == 30
    assert "Too many failed sign-in attempts" in refused.get_data(as_text=True)
    assert attacker.get_cookie("authy2_session") is None
    assert sign_in_from(browser, CAFE, bob.email).status_code == 302
    assert sign_in_from(app.test_client(), HOME, bob.email).status_code == 302
    assert _locked_scopes(app) == ["pair"]


def test_the_owners_browser_gets_in_from_the_attackers_own_address(app, factories):
    """Behind one NAT with the attacker, bob's browser (device cookie) still signs in; a fresh browser there does not."""
    bob = factories.user()
    browser = _browser_of(app, bob.email, ATTACKER)
    _fail(app.test_client(), ATTACKER, bob.email, PAIR)
    assert sign_in_from(app.test_client(), ATTACKER, bob.email).status_code == 429
    assert sign_in_from(browser, ATTACKER, bob.email).status_code == 302


def test_the_device_cookie_is_signed_http_only_lax_and_long_lived(app, factories):
    """The device cookie names the browser for a year, HttpOnly and SameSite=Lax, and holds no email address."""
    bob = factories.user()
    response = sign_in_from(app.test_client(), HOME, bob.email)
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(DEVICE_COOKIE + "=")]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age"} <= attributes and "SameSite=Lax" in cookie
    assert "Max-Age=31536000" in cookie
    assert bob.email not in cookie and "%40" not in cookie


def test_many_addresses_slow_the_account_down_and_never_lock_it(app, factories):
    """Failures from many addresses slow bob's account down: an untrusted attempt too early gets 429 with a
    Retry-After of at most 30 s and gets in after it; bob's own browser signs in at once."""
    bob = factories.user()
    with time_machine.travel("2026-03-01 10:00:07", tick=False) as clock:
        browser = _browser_of(app, bob.email)
        _push_into_slowdown(app, bob.email)
        early = sign_in_from(app.test_client(), CAFE, bob.email)
        assert early.status_code == 429 and int(early.headers["Retry-After"]) == 30 - 7
        assert sign_in_from(browser, CAFE, bob.email).status_code == 302
        clock.shift(int(early.headers["Retry-After"]))
        assert sign_in_from(app.test_client(), CAFE, bob.email).status_code == 302
    assert "account_slowdown" in _locked_scopes(app)


def test_another_users_or_a_tampered_device_cookie_exempts_nothing(app, factories):
    """A device cookie counts only for the account it was issued to, and only as signed."""
    bob, carol = factories.user(), factories.user()
    with time_machine.travel("2026-03-01 10:00:00", tick=False):
        carols_browser = _browser_of(app, carol.email)
        bobs_cookie = _browser_of(app, bob.email).get_cookie(DEVICE_COOKIE).value
        _push_into_slowdown(app, bob.email)
        assert sign_in_from(carols_browser, CAFE, bob.email).status_code == 429
        tampered = app.test_client()
        tampered.set_cookie(DEVICE_COOKIE, bobs_cookie[:-2] + ("AA" if bobs_cookie[-2:] != "AA" else "BB"))
        assert sign_in_from(tampered, CAFE, bob.email).status_code == 429


def test_a_device_with_too_many_failures_loses_its_exemption(app, factories):
    """OWASP device cookies: PAIR wrong passwords from one browser and its cookie no longer skips the slow-down."""
    bob = factories.user()
    with time_machine.travel("2026-03-01 10:00:00", tick=False):
        browser = _browser_of(app, bob.email)
        _push_into_slowdown(app, bob.email)
        assert [r.status_code for r in _fail(browser, HOME, bob.email, PAIR)] == [401] * PAIR
        assert sign_in_from(browser, HOME, bob.email).status_code == 429
    assert "device" in _locked_scopes(app)


def test_successful_sign_ins_never_lock(make_app, factories):
    """However many times the owner signs in, no success counts toward any lock."""
    app = make_app(RATELIMIT_LOGIN_IP="1000 per minute")
    bob = factories.user()
    browser = app.test_client()
    for _ in range(ADDRESS + 1):
        assert sign_in_from(browser, HOME, bob.email).status_code == 302
        browser.delete_cookie("authy2_session")


def test_pair_lock_lifts_after_the_delay_and_doubles_after(app, factories):
    """The pair lock lasts 30 s; the next failure from that address locks it for 60 s."""
    bob = factories.user()
    attacker = app.test_client()
    with time_machine.travel("2026-03-01 10:00:00", tick=False) as clock:
        _fail(attacker, ATTACKER, bob.email, PAIR)
        clock.shift(31)
        second = sign_in_from(attacker, ATTACKER, bob.email, WRONG)
        assert second.status_code == 429 and int(second.headers["Retry-After"]) == 60
        clock.shift(31)
        assert sign_in_from(attacker, ATTACKER, bob.email).status_code == 429
        clock.shift(30)
        assert sign_in_from(attacker, ATTACKER, bob.email).status_code == 302


def test_unknown_addresses_lock_exactly_like_real_ones(app, factories):
    """An address without an account locks and slows down the same way, so no answer reveals an account."""
    known = factories.user()
    answers = {}
    with time_machine.travel("2026-03-01 10:00:00", tick=False):
        for email in (known.email, "ghost@example.com"):
            responses = _fail(app.test_client(), ATTACKER, email, PAIR + 1)
            _push_into_slowdown(app, email, ACCOUNT + 6 - PAIR)
            responses += _fail(app.test_client(), CAFE, email, 1)
            # (a 401's Retry-After is Flask-Limiter's per-IP window, on Redis by a clock of its own)
            answers[email] = [(r.status_code, r.headers.get("Retry-After") if r.status_code == 429 else None)
                              for r in responses]
    assert answers[known.email] == answers["ghost@example.com"]
    assert [status for status, _ in answers[known.email]] == [401] * (PAIR - 1) + [429] * 3


def test_success_clears_the_pair_failures(app, factories):
    """A successful sign-in resets the (account, address) failures, so old ones do not add up."""
    bob = factories.user()
    client = app.test_client()
    _fail(client, HOME, bob.email, PAIR - 1)
    assert sign_in_from(client, HOME, bob.email).status_code == 302
    client.delete_cookie("authy2_session")
    client.delete_cookie(DEVICE_COOKIE)
    assert [r.status_code for r in _fail(client, HOME, bob.email, PAIR - 1)] == [401] * (PAIR - 1)


def test_one_address_spraying_many_accounts_is_locked(make_app, factories):
    """Failures across many accounts from one address lock that address for every account, a device cookie
    included, after ADDRESS failures."""
    app = make_app(RATELIMIT_LOGIN_IP="1000 per minute")
    bob = factories.user()
    browser = _browser_of(app, bob.email, ATTACKER)
    sprayer = app.test_client()
    for n in range(ADDRESS):
        sign_in_from(sprayer, ATTACKER, f"spray{n}@example.com", WRONG)
    assert sign_in_from(browser, ATTACKER, bob.email).status_code == 429
    assert sign_in_from(browser, HOME, bob.email).status_code == 302


def test_flask_limiter_caps_sign_in_posts_per_ip(make_app, factories):
    """RATELIMIT_LOGIN_IP limits sign-in POSTs per IP with an HTML 429 page and Retry-After."""
    app = make_app(RATELIMIT_LOGIN_IP="2 per minute")
    client = app.test_client()
    user = factories.user()
    sign_in_from(client, HOME, user.email, WRONG)
    sign_in_from(client, HOME, user.email, WRONG)
    limited = sign_in_from(client, HOME, user.email)
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    assert "text/html" in limited.content_type


def test_lockout_works_with_rate_limits_disabled(make_app, factories, monkeypatch):
    """RATELIMIT_ENABLED=false switches off Flask-Limiter only: sign-in works and lockout still locks."""
    monkeypatch.setattr(limiter, "enabled", limiter.enabled)  # the shared limiter takes the last app's switch
    app = make_app(RATELIMIT_ENABLED=False)
    # A process whose only app runs with limits off has a limiter without storage (Flask-Limiter never
    # creates one then); here the session app already gave the shared limiter one, so take it away.
    monkeypatch.setattr(limiter, "_storage", None)
    client = app.test_client()
    bob, other = factories.user(), factories.user()
    assert sign_in_from(client, HOME, bob.email).status_code == 302
    assert client.get_cookie("authy2_session") is not None
    client.delete_cookie("authy2_session")
    responses = _fail(client, HOME, other.email, PAIR)
    assert [r.status_code for r in responses] == [401] * (PAIR - 1) + [429]
    locked = sign_in_from(client, HOME, other.email)
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.get_data(as_text=True)


def _sign_in_in_chromium(page, server, email: str) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.browser
def test_in_chromium_the_owners_browser_outlasts_an_attack_from_its_own_address(page, chromium, live_server, app,
                                                                                 factories):
    """Chromium signs bob in and out; an attacker on the same address (loopback) locks that address out of bob;
    the same browser signs in again at once, while a fresh browser there is told to wait."""
    bob = factories.user()
    _sign_in_in_chromium(page, live_server, bob.email)
    page.wait_for_url("**/account")
    page.goto(f"{live_server.url}/logout")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    assert DEVICE_COOKIE in {cookie["name"] for cookie in page.context.cookies()}
    _fail(app.test_client(), "127.0.0.1", bob.email, PAIR)
    _sign_in_in_chromium(page, live_server, bob.email)
    page.wait_for_url("**/account")
    stranger = chromium.new_context()
    try:
        other = stranger.new_page()
        _sign_in_in_chromium(other, live_server, bob.email)
        expect(other.get_by_role("alert")).to_contain_text("Too many failed sign-in attempts")
    finally:
        stranger.close()
