"""Progressive sign-in lockout on the hosted login page, per account and per IP."""
from __future__ import annotations

import time_machine
from sqlalchemy import select

from idp.extensions import db, limiter
from idp.models import AuditEvent
from idp.services import lockout
from tests.web.helpers import sign_in


def _fail(client, email: str, times: int):
    return [sign_in(client, email, "wrong-password-1") for _ in range(times)]


def test_account_locks_after_repeated_failures_even_with_the_right_password(client, factories, app):
    """After ACCOUNT_THRESHOLD failures the right password is refused for a while (429 + Retry-After)."""
    user = factories.user()
    responses = _fail(client, user.email, lockout.ACCOUNT_THRESHOLD)
    assert [r.status_code for r in responses[:-1]] == [401] * (lockout.ACCOUNT_THRESHOLD - 1)
    assert responses[-1].status_code == 429
    locked = sign_in(client, user.email)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "Too many failed sign-in attempts" in locked.get_data(as_text=True)
    assert client.get_cookie("authy2_session") is None
    with app.app_context():
        actions = [e.action for e in db.session.scalars(select(AuditEvent))]
    assert "login.locked" in actions


def test_lock_lifts_after_the_delay(client, factories):
    """Once the lock delay has passed, the right password works again."""
    user = factories.user()
    with time_machine.travel("2026-03-01 10:00:00", tick=False) as clock:
        _fail(client, user.email, lockout.ACCOUNT_THRESHOLD)
        assert sign_in(client, user.email).status_code == 429
        clock.shift(lockout.FIRST_DELAY + 1)
        assert sign_in(client, user.email).status_code == 302


def test_each_further_failure_doubles_the_lock(client, factories):
    """The lock grows: a failure after the first lock locks for twice as long."""
    user = factories.user()
    with time_machine.travel("2026-03-01 10:00:00", tick=False) as clock:
        _fail(client, user.email, lockout.ACCOUNT_THRESHOLD)
        clock.shift(lockout.FIRST_DELAY + 1)
        second = sign_in(client, user.email, "wrong-password-1")
        assert second.status_code == 429
        assert int(second.headers["Retry-After"]) >= 2 * lockout.FIRST_DELAY
        clock.shift(lockout.FIRST_DELAY + 1)
        assert sign_in(client, user.email).status_code == 429
        clock.shift(lockout.FIRST_DELAY)
        assert sign_in(client, user.email).status_code == 302


def test_unknown_addresses_lock_exactly_like_real_ones(client, factories):
    """An address without an account locks the same way, so the lock reveals nothing."""
    known = factories.user()
    real = _fail(client, known.email, lockout.ACCOUNT_THRESHOLD)
    fake = _fail(client, "ghost@example.com", lockout.ACCOUNT_THRESHOLD)
    assert [r.status_code for r in real] == [r.status_code for r in fake]


def test_lock_of_one_account_does_not_block_another(client, factories):
    """Failures on one account do not lock a different account."""
    victim, other = factories.user(), factories.user()
    _fail(client, victim.email, lockout.ACCOUNT_THRESHOLD)
    assert sign_in(client, other.email).status_code == 302


def test_success_clears_the_failure_count(client, factories):
    """A successful sign-in resets the account's failures, so old ones do not add up."""
    user = factories.user()
    _fail(client, user.email, lockout.ACCOUNT_THRESHOLD - 1)
    assert sign_in(client, user.email).status_code == 302
    client.delete_cookie("authy2_session")
    assert sign_in(client, user.email, "wrong-password-1").status_code == 401


def test_one_ip_spraying_many_accounts_is_locked(make_app, factories):
    """Failures across many addresses from one IP lock that IP after IP_THRESHOLD."""
    app = make_app(RATELIMIT_LOGIN_IP="1000 per minute")
    client = app.test_client()
    user = factories.user()
    for n in range(lockout.IP_THRESHOLD):
        sign_in(client, f"spray{n}@example.com", "wrong-password-1")
    assert sign_in(client, user.email).status_code == 429


def test_flask_limiter_caps_sign_in_posts_per_ip(make_app, factories):
    """RATELIMIT_LOGIN_IP limits sign-in POSTs per IP with an HTML 429 page and Retry-After."""
    app = make_app(RATELIMIT_LOGIN_IP="2 per minute")
    client = app.test_client()
    user = factories.user()
    sign_in(client, user.email, "wrong-password-1")
    sign_in(client, user.email, "wrong-password-1")
    limited = sign_in(client, user.email)
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
    assert sign_in(client, bob.email).status_code == 302
    assert client.get_cookie("authy2_session") is not None
    client.delete_cookie("authy2_session")
    responses = _fail(client, other.email, lockout.ACCOUNT_THRESHOLD)
    assert [r.status_code for r in responses] == [401] * (lockout.ACCOUNT_THRESHOLD - 1) + [429]
    locked = sign_in(client, other.email)
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.get_data(as_text=True)
