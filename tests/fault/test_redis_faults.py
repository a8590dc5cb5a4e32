"""Redis stalls and dies under load (issue #9 item 2): Redis holds counters and caches, never data, so
the service keeps answering, without a 5xx and without waiting on Redis, and health tells the truth.

The app runs under gunicorn (two threaded workers, each with its own breaker and rate limiter) on the
test database, against a redis-server this test starts, pauses (SIGSTOP), resumes, kills and restarts.
"""
from __future__ import annotations

import re
import shutil
import threading
import time
import uuid
from collections import defaultdict

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.conftest import DATABASE_URL, REQUIRE_SERVICES
from tests.factories import DEFAULT_PASSWORD
from tests.fault.processes import GunicornApp, RedisServer

# A request may pay one limiter timeout and one breaker timeout (0.25 s each), plus its own work.
SLOWEST_ANSWER = 1.5
EMAIL = "load.user@example.com"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        if REQUIRE_SERVICES:
            pytest.fail("redis-server is not installed (REQUIRE_SERVICES=1)")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def jwt_client(factories):
    key = RSAKey.generate_key(2048, private=True, parameters={"kid": "load-key"})
    client = factories.client(secret=None, token_endpoint_auth_method="private_key_jwt",
                              grant_types=["client_credentials"], scope="reports:read",
                              jwks={"keys": [key.as_dict(private=False)]})
    return client.client_id, key


@pytest.fixture
def served(app, factories, redis_server, tmp_path):
    factories.user(email=EMAIL)
    with app.app_context():
        app.extensions["oidc"]["keys"].ensure()  # before two workers would race to make them
    # development, not testing: the testing profile shares one SQLite connection between all threads.
    server = GunicornApp(tmp_path, {
        "FLASK_ENV": "development", "DATABASE_URL": DATABASE_URL, "REDIS_URL": redis_server.url,
        "REDIS_SOCKET_TIMEOUT": "0.25", "REDIS_CONNECT_TIMEOUT": "0.25", "REDIS_RETRY_INTERVAL": "1",
        "KEYS_DIR": app.config["KEYS_DIR"], "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"), "BCRYPT_LOG_ROUNDS": "4",
        "RATELIMIT_LOGIN_IP": "100000 per minute", "RATELIMIT_LOGIN_ACCOUNT": "100000 per minute",
        "RATELIMIT_REGISTER": "100000 per hour", "LOG_LEVEL": "INFO", "SMTP_HOST": "",
        "SECRET_KEY": "fault-test-secret-key-" + "x" * 20,
    })
    server.environment["ISSUER"] = server.url  # the audience of client assertions
    server.start()
    yield server
    server.stop()


class Load:
    """Threads doing API logins, page logins, registrations and token requests until stopped."""

    def __init__(self, base: str, jwt_client):
        self.base = base
        self.client_id, self.key = jwt_client
        self.results: list[tuple[str, int, float]] = []  # (kind, status, seconds)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, args=(step,), daemon=True)
                         for step in (self.api_login, self.page_login, self.register, self.token)]

    def _loop(self, step) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status = step(requests.Session())
            except requests.RequestException:  # no answer at all counts as a failure too
                status = 599
            with self._lock:
                self.results.append((step.__name__, status, time.monotonic() - started))

    def api_login(self, http) -> int:
        return http.post(f"{self.base}/api/v1/auth/login", json={"email": EMAIL, "password": DEFAULT_PASSWORD},
                         timeout=10).status_code

    def page_login(self, http) -> int:
        form = http.get(f"{self.base}/login", timeout=10)
        if form.status_code != 200:
            return form.status_code
        token = CSRF.search(form.text).group(1)
        return http.post(f"{self.base}/login", data={"email": EMAIL, "password": DEFAULT_PASSWORD, "csrf_token": token,
                                                       "request": "", "next": ""},
                         allow_redirects=False, timeout=10).status_code

    def register(self, http) -> int:
        body = {"email": f"new-{uuid.uuid4().hex[:12]}@example.com", "password": "Long-Enough-Pass-1", "name": "New"}
        return http.post(f"{self.base}/api/v1/auth/register", json=body, timeout=10).status_code

    def token(self, http) -> int:
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": f"{self.base}/oauth2/token", "iat": now,
                  "exp": now + 60, "jti": str(uuid.uuid4())}
        assertion = jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)
        return http.post(f"{self.base}/oauth2/token", timeout=10, data={
            "grant_type": "client_credentials", "client_id": self.client_id, "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}).status_code

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


def health(base: str) -> tuple[int, dict]:
    response = requests.get(f"{base}/api/health", timeout=5)
    return response.status_code, response.json()["data"]


def watch_health(base: str, seconds: float) -> list[str]:
    """Redis as /api/health reports it, polled for `seconds`."""
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, data = health(base)
        assert status == 200 and data["status"] == ("ok" if data["redis"] == "ok" else "degraded")
        seen.append(data["redis"])
        time.sleep(0.1)
    return seen


def test_redis_stall_and_death_under_load(served, redis_server, jwt_client):
    """Paused 3 s, resumed, killed, restarted on its port: never a 5xx, logins keep succeeding, nothing
    waits on Redis past its timeout, health says down/degraded while it is down and ok once it is back."""
    base = served.url
    with Load(base, jwt_client) as load:
        assert set(watch_health(base, 1.0)) == {"ok"}
        redis_server.pause()
        stalled = watch_health(base, 3.0)
        redis_server.resume()
        resumed = watch_health(base, 1.0)
        redis_server.kill()
        dead = watch_health(base, 2.0)
        redis_server.start()
        back = watch_health(base, 1.5)
    assert set(stalled) == {"down"} and set(dead) == {"down"}
    assert resumed[-1] == "ok" and back[-1] == "ok" and back.count("down") <= 1

    by_kind = defaultdict(list)
    for kind, status, seconds in load.results:
        by_kind[kind].append((status, seconds))
    assert set(by_kind) == {"api_login", "page_login", "register", "token"}
    assert all(len(rows) >= 10 for rows in by_kind.values()), {k: len(v) for k, v in by_kind.items()}
    assert not [row for row in load.results if row[1] >= 500]
    assert {status for status, _ in by_kind["api_login"]} == {200}
    assert {status for status, _ in by_kind["page_login"]} == {302}
    assert {status for status, _ in by_kind["register"]} == {201}
    assert {status for status, _ in by_kind["token"]} == {200}
    slowest = max(load.results, key=lambda row: row[2])
    assert slowest[2] < SLOWEST_ANSWER, slowest

    # Each worker warned once per outage (not once per request), and went back to Redis afterwards.
    log = served.log()
    assert 1 <= log.count("Redis is unreachable") <= 4 and "Redis answers again" in log
    assert redis_server.keys("authy2:assertion:*"), "the workers did not return to Redis"
