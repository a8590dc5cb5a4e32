"""Redis when configured, with an in-process fallback for short-lived keys (replay caches)."""
from __future__ import annotations

import threading
import time

import redis
from flask import Flask, current_app


def setup_cache(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) if url else None
    app.extensions["redis"] = client
    app.extensions["local_cache"] = LocalTTLCache()


def get_redis() -> redis.Redis | None:
    return current_app.extensions.get("redis")


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
