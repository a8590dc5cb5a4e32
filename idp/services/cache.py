"""The app's Redis (optional): one client with short timeouts and no retries behind a circuit breaker,
and the expiring counters that use it while it answers and the database otherwise."""
from __future__ import annotations

import redis
from flask import Flask, current_app
from limits.storage import storage_from_string

from idp.services.counter_store import Counters, DatabaseCounters
from idp.services.redis_guard import RedisGuard


def setup_cache(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    guard = None
    redis_storage = None
    if url:
        client = redis.Redis.from_url(url, **app.config["REDIS_CLIENT_OPTIONS"])
        guard = RedisGuard(client, app.config["REDIS_RETRY_INTERVAL"])
        # The `limits` library's Redis storage (atomic INCR + EXPIRE) on the same connection pool.
        redis_storage = storage_from_string(url, connection_pool=client.connection_pool, key_prefix="authy2")
    app.extensions["redis"] = guard
    # Counters with an expiry (sign-in lockout, mail limits), owned by this app rather than
    # Flask-Limiter: they keep counting whatever RATELIMIT_ENABLED says.
    app.extensions["counters"] = Counters(DatabaseCounters(), redis_storage, guard)


def get_redis() -> RedisGuard | None:
    """The app's Redis behind its breaker, or None without REDIS_URL."""
    return current_app.extensions.get("redis")


def get_counters() -> Counters:
    """Expiring counters (incr/get/clear/reset) shared by every worker: Redis, else the database."""
    return current_app.extensions["counters"]
