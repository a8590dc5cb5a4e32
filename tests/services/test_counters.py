"""Expiring counters (get_counters()): the database when Redis is not configured or down, shared by
every worker and node, committed whatever the request decides, and expired on time."""
from __future__ import annotations

import threading
from unittest.mock import Mock

import pytest
import redis
import time_machine
from limits.storage import storage_from_string
from sqlalchemy import func, insert, select

from idp.extensions import db
from idp.jobs import run_job
from idp.models import AuditEvent, Counter
from idp.models.base import new_id, utcnow
from idp.services.counter_store import Counters, DatabaseCounters
from idp.services import redis_guard

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def database_counters(app) -> DatabaseCounters:
    return app.extensions["counters"].database


def test_without_redis_counters_live_in_the_database(make_app):
    """With no REDIS_URL the counters are rows of the counters table, so every worker sees them."""
    app = make_app(REDIS_URL=None)
    with app.app_context():
        counters = app.extensions["counters"]
        assert [counters.incr("lockout:a", 60) for _ in range(3)] == [1, 2, 3]
        assert db.session.scalar(select(Counter.value).where(Counter.key == "lockout:a")) == 3


def test_two_processes_share_one_count(app, make_app):
    """Two app objects (two workers) on one database count together; a clear is seen by both."""
    other = make_app()
    with app.app_context():
        assert database_counters(app).incr("shared", 60) == 1
    with other.app_context():
        assert database_counters(other).incr("shared", 60, amount=2) == 3
    with app.app_context():
        assert database_counters(app).get("shared") == 3
        database_counters(app).clear("shared")
    with other.app_context():
        assert database_counters(other).get("shared") == 0


@pytest.mark.postgres
def test_concurrent_increments_are_never_lost(app, make_app):
    """The upsert is atomic: 4 threads in each of two apps, 10 increments each, count exactly 80."""
    apps, seen, lock = [app, make_app()], [], threading.Lock()

    def work(application):
        with application.app_context():
            values = [database_counters(application).incr("raced", 60) for _ in range(10)]
            db.session.remove()
        with lock:
            seen.extend(values)

    threads = [threading.Thread(target=work, args=(application,)) for application in apps for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(seen) == list(range(1, 81))


def test_an_increment_survives_the_request_rolling_back(app):
    """A refused request rolls back its own work (idp.requests), never a counter it wrote meanwhile."""
    with app.test_request_context():
        db.session.execute(insert(AuditEvent), {"id": new_id(), "created_at": utcnow(), "action": "probe",
                                                "outcome": "success"})
        assert app.extensions["counters"].incr("failed-sign-in", 60) == 1
        db.session.rollback()
        assert app.extensions["counters"].get("failed-sign-in") == 1
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_an_expired_counter_reads_zero_and_starts_again(app, ctx):
    """A counter counts for `expiry` seconds from its first increment, then starts again from 1."""
    counters = database_counters(app)
    with time_machine.travel("2026-06-01 10:00:00", tick=False) as clock:
        counters.incr("window", 60)
        clock.shift(30)
        assert counters.incr("window", 60) == 2
        clock.shift(31)
        assert counters.get("window") == 0
        assert counters.incr("window", 60) == 1


def test_the_job_purges_expired_counters_only(app, ctx):
    """purge_counters deletes the expired rows and keeps the live ones."""
    counters = database_counters(app)
    with time_machine.travel("2026-06-01 10:00:00", tick=False) as clock:
        counters.incr("short", 60)
        counters.incr("long", 3600)
        clock.shift(120)
        assert run_job("purge_counters") == ["purge_counters: deleted 1 expired counter(s)"]
        assert db.session.scalars(select(Counter.key)).all() == ["long"]


def test_long_keys_are_stored_by_their_digest(app, ctx):
    """A key longer than the column is counted under its SHA-256, distinct from its prefixes."""
    counters = database_counters(app)
    assert counters.incr("k" * 300, 60) == 1 and counters.incr("k" * 301, 60) == 1
    assert counters.get("k" * 300) == 1


def test_redis_down_falls_back_to_the_database_and_warns_once(app, ctx, monkeypatch):
    """A Redis error trips the breaker: the database counts, later calls skip Redis, one WARNING only."""
    log = Mock()
    monkeypatch.setattr(redis_guard, "logger", log)
    client = redis.Redis.from_url(UNREACHABLE_REDIS, **app.config["REDIS_CLIENT_OPTIONS"])
    guard = redis_guard.RedisGuard(client, retry_interval=60)
    storage = storage_from_string(UNREACHABLE_REDIS, connection_pool=client.connection_pool, key_prefix="authy2")
    in_redis = Mock(wraps=storage)
    counters = Counters(DatabaseCounters(), in_redis, guard)
    assert [counters.incr("fallback", 60) for _ in range(3)] == [1, 2, 3]
    assert counters.get("fallback") == 3
    assert in_redis.incr.call_count == 1 and in_redis.get.call_count == 0  # Redis tried once only
    assert guard.is_down and log.warning.call_count == 1 and log.info.call_count == 0
    assert db.session.scalar(select(Counter.value).where(Counter.key == "fallback")) == 3


def test_reset_clears_the_database_counters(app, ctx):
    """reset() (the tests' clean slate) forgets every database counter too."""
    counters = app.extensions["counters"]
    database_counters(app).incr("to-forget", 60)
    counters.reset()
    assert database_counters(app).get("to-forget") == 0
