"""Assertion ids used once until they expire (SAML 2.0 Profiles 4.1.4.5): Redis when set, else the database."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from idp.extensions import db
from idp.models import SeenAssertion, utcnow
from idp.services import replay


def test_an_assertion_id_is_accepted_once(ctx):
    """The second use of an assertion id at the same upstream is a replay."""
    until = utcnow() + timedelta(minutes=5)
    assert replay.use_once("up-1", "_assertion-1", until) is True
    assert replay.use_once("up-1", "_assertion-1", until) is False


def test_ids_are_scoped_to_their_upstream(ctx):
    """Assertion ids are unique per issuer only: the same id from another upstream is not a replay of the first."""
    assert replay.use_once("up-1", "_same-id") is True
    assert replay.use_once("up-2", "_same-id") is True


def test_the_use_survives_the_request_rolling_back(ctx):
    """A presented assertion is spent even when the sign-in is refused afterwards (the request rolls back)."""
    assert replay.use_once("up-1", "_spent") is True
    db.session.rollback()
    assert replay.use_once("up-1", "_spent") is False


def test_database_cache_is_purged_after_expiry(app, ctx):
    """Without Redis, expired rows are purged by the job; a live one stays."""
    if app.extensions["redis"] is not None:
        pytest.skip("the database cache is used only without REDIS_URL")
    with time_machine.travel("2026-06-01 10:00:00", tick=False) as clock:
        replay.use_once("up-1", "_short", utcnow() + timedelta(minutes=1))
        replay.use_once("up-1", "_long", utcnow() + timedelta(hours=1))
        clock.shift(120)
        assert replay.purge_expired() == 1
        assert [row.expires_at > utcnow() for row in db.session.query(SeenAssertion)] == [True]


@pytest.mark.redis
def test_redis_cache_expires_with_the_assertion(app, ctx):
    """With Redis, SET NX EX: the key lives until the assertion's expiry."""
    assert replay.use_once("up-1", "_r", utcnow() + timedelta(seconds=30)) is True
    [key] = app.extensions["redis"].keys("authy2:assertion:*")
    assert 0 < app.extensions["redis"].ttl(key) <= 30
