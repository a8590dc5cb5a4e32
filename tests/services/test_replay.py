"""Assertions used once until they expire (SAML 2.0 Profiles 4.1.4.5, RFC 7523 3): Redis while it
answers, else the database, so every worker and node agrees."""
from __future__ import annotations

from datetime import timedelta

import pytest
import redis
import time_machine
from joserfc.jwk import RSAKey
from sqlalchemy import func, insert, select

from idp.extensions import db
from idp.models import AuditEvent, SeenAssertion, utcnow
from idp.models.base import new_id
from idp.services import replay
from idp.services.redis_guard import RedisGuard
from tests.oidc.test_client_auth import assertion, pkjwt


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


def test_database_cache_is_purged_after_expiry(make_app):
    """Without Redis, expired rows are purged by the job; a live one stays."""
    with make_app(REDIS_URL=None).app_context(), time_machine.travel("2026-06-01 10:00:00", tick=False) as clock:
        replay.use_once("up-1", "_short", utcnow() + timedelta(minutes=1))
        replay.use_once("up-1", "_long", utcnow() + timedelta(hours=1))
        clock.shift(120)
        assert replay.purge_expired() == 1
        assert [row.expires_at > utcnow() for row in db.session.query(SeenAssertion)] == [True]


@pytest.mark.redis
def test_redis_cache_expires_with_the_assertion(app, ctx):
    """With Redis, SET NX EX: the key lives until the assertion's expiry."""
    assert replay.use_once("up-1", "_r", utcnow() + timedelta(seconds=30)) is True
    client = app.extensions["redis"].client
    [key] = client.keys("authy2:assertion:*")
    assert 0 < client.ttl(key) <= 30


def test_a_client_assertion_is_refused_by_another_worker_without_redis(make_app, factories):
    """RFC 7523 3 (7): without Redis, a jti one worker accepted is a replay at every other (it was
    accepted twice in 10 tries with per-process caches); RFC 6749 5.2: 400 invalid_client, no header auth."""
    key = RSAKey.generate_key(2048, private=True, parameters={"kid": "rp-key-1"})
    rp = factories.client(secret=None, token_endpoint_auth_method="private_key_jwt", grant_types=["client_credentials"],
                          scope="reports:read", jwks={"keys": [key.as_dict(private=False)]})
    worker_a, worker_b = make_app(REDIS_URL=None).test_client(), make_app(REDIS_URL=None).test_client()
    for attempt in range(5):
        token = assertion(rp.client_id, key, jti=f"jti-{attempt}")
        assert pkjwt(worker_a, rp.client_id, token).status_code == 200
        replayed = pkjwt(worker_b, rp.client_id, token)
        assert replayed.status_code == 400 and replayed.get_json()["error"] == "invalid_client"


def test_remember_once_is_shared_by_two_apps_without_redis(make_app):
    """The database cache answers for every app on the database: the second sight anywhere is a replay."""
    first, second = make_app(REDIS_URL=None), make_app(REDIS_URL=None)
    with first.app_context():
        assert replay.remember_once("client-assertion:rp:jti-1", 60) is True
    with second.app_context():
        assert replay.remember_once("client-assertion:rp:jti-1", 60) is False
        assert replay.remember_once("client-assertion:rp:jti-2", 60) is True


def test_a_use_survives_the_rollback_of_a_request_that_wrote(app):
    """Spent even when the request had written (and then rolled back) its own rows."""
    with app.test_request_context():
        db.session.execute(insert(AuditEvent), {"id": new_id(), "created_at": utcnow(), "action": "probe",
                                                "outcome": "success"})
        assert replay.remember_once("client-assertion:rp:spent", 60) is True
        db.session.rollback()
        assert replay.remember_once("client-assertion:rp:spent", 60) is False
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_an_expired_key_may_be_used_again_before_the_purge(make_app):
    """A key past its expiry is no replay any more, even while its row waits for the purge job."""
    app = make_app(REDIS_URL=None)
    with app.app_context(), time_machine.travel("2026-06-01 10:00:00", tick=False) as clock:
        assert replay.remember_once("client-assertion:rp:old", 60) is True
        clock.shift(61)
        assert replay.remember_once("client-assertion:rp:old", 60) is True
        assert replay.remember_once("client-assertion:rp:old", 60) is False


def test_redis_down_falls_back_to_the_database(app, ctx, monkeypatch):
    """With Redis configured but unreachable, the database refuses the replay instead (never a 500)."""
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", **app.config["REDIS_CLIENT_OPTIONS"])
    monkeypatch.setitem(app.extensions, "redis", RedisGuard(client, retry_interval=60))
    assert replay.use_once("up-1", "_while-down") is True
    assert replay.use_once("up-1", "_while-down") is False
    assert db.session.scalar(select(func.count()).select_from(SeenAssertion)) == 1
