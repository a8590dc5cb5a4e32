"""Redis behind a circuit breaker: after a Redis error this worker treats Redis as down for a while
and its callers use their fallback at once, so a stalled or dead Redis costs a request at most one
short timeout, never one per call."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, TypeVar

import redis

logger = logging.getLogger(__name__)

T = TypeVar("T")
FAILURES = (redis.RedisError, OSError)


class RedisDown(Exception):
    """Redis did not answer (or counts as down for now): use the fallback."""


class RedisGuard:
    """One app's Redis client and whether Redis is up, as this worker last saw it."""

    def __init__(self, client: redis.Redis, retry_interval: float):
        self.client = client
        self.retry_interval = retry_interval
        self._lock = threading.Lock()
        self._down = False
        self._retry_at = 0.0

    def call(self, operation: Callable[[redis.Redis], T]) -> T:
        """`operation(client)`'s result; RedisDown when it fails or Redis counts as down."""
        if not self._may_try():
            raise RedisDown()
        try:
            result = operation(self.client)
        except FAILURES as error:
            self._went_down(error)
            raise RedisDown() from error
        self._came_back()
        return result

    def probe(self) -> bool:
        """Ping Redis now, whatever the breaker says (the health check); True when it answered."""
        try:
            self.client.ping()
        except FAILURES as error:
            self._went_down(error)
            return False
        self._came_back()
        return True

    @property
    def is_down(self) -> bool:
        return self._down

    def _may_try(self) -> bool:
        with self._lock:
            if not self._down:
                return True
            now = time.monotonic()
            if now < self._retry_at:
                return False
            # This caller tries Redis again; the others keep to the fallback until it knows.
            self._retry_at = now + self.retry_interval
            return True

    def _went_down(self, error: BaseException) -> None:
        with self._lock:
            was_down, self._down = self._down, True
            self._retry_at = time.monotonic() + self.retry_interval
        if not was_down:
            logger.warning("Redis is unreachable (%s); counters and replay caches use the database and rate "
                           "limits this worker's memory; next try in %g s", type(error).__name__,
                           self.retry_interval)

    def _came_back(self) -> None:
        if not self._down:
            return
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            logger.info("Redis answers again; counters and replay caches use it again")
