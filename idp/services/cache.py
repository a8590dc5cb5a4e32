"""Redis when configured, with an in-process fallback for short-lived keys (replay caches, counters)."""
from __future__ import annotations

import threading
import time

import redis
from flask import Flask, current_app
from limits.storage import Storage, storage_from_string

_TIMEOUTS = {"socket_timeout": 2, "socket_connect_timeout": 2}


def setup_cache(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    app.extensions["redis"] = redis.Redis.from_url(url, **_TIMEOUTS) if url else None
    app.extensions["local_cache"] = LocalTTLCache()
    # Counters with an expiry (sign-in lockout) in the `limits` library's storage, like Flask-Limiter's
    # but owned by this app: they keep counting whatever RATELIMIT_ENABLED says.
    options = {**_TIMEOUTS, "key_prefix": "authy2"} if url else {}
    app.extensions["counters"] = storage_from_string(url or "memory://", **options)


def get_redis() -> redis.Redis | None:
    return current_app.extensions.get("redis")


def get_counters() -> Storage:
    """Expiring counters (incr/get/clear) shared by every worker when Redis is configured."""
    return current_app.extensions["counters"]


class LocalTTLCache:
    """A tiny thread-safe TTL set-if-absent store for the single-process embedded default."""

    def __init__(self):
        self._data: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, key: str, ttl: int) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._data) > 10000:
                self._data = {k: exp for k, exp in self._data.items() if exp > now}
            expiry = self._data.get(key)
            if expiry is not None and expiry > now:
                return False
            self._data[key] = now + ttl
            return True


def remember_once(key: str, ttl: int) -> bool:
    """True the first time `key` is seen within `ttl` seconds, False on a replay."""
    client = get_redis()
    if client is not None:
        return bool(client.set(f"authy2:once:{key}", b"1", nx=True, ex=max(ttl, 1)))
    return current_app.extensions["local_cache"].add(key, ttl)
