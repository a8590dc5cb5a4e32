"""X-Forwarded-For is believed only through TRUSTED_PROXY_COUNT proxies: sessions, limits, lockout."""
from __future__ import annotations

import pytest

from tests.factories import DEFAULT_PASSWORD

LOGIN = "/api/v1/auth/login"


def _session_ip(app, email: str, **headers) -> str:
    client = app.test_client()
    response = client.post(LOGIN, json={"email": email, "password": DEFAULT_PASSWORD}, headers=headers,
                           environ_base={"REMOTE_ADDR": "192.0.2.10"})
    assert response.status_code == 200
    return response.get_json()["data"]["session"]["ip_address"]


def test_without_trusted_proxies_a_forged_header_is_ignored(make_app, factories):
    """With TRUSTED_PROXY_COUNT=0 the socket peer is the client, whatever X-Forwarded-For claims."""
    app = make_app(TRUSTED_PROXY_COUNT=0)
    user = factories.user()
    assert _session_ip(app, user.email, **{"X-Forwarded-For": "203.0.113.7"}) == "192.0.2.10"


@pytest.mark.parametrize("count, header, expected", [
    (1, "203.0.113.7", "203.0.113.7"),
    (1, "198.51.100.99, 203.0.113.7", "203.0.113.7"),  # the left entry is client-written: not believed
    (2, "198.51.100.99, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
    (2, "203.0.113.7", "192.0.2.10"),  # fewer hops than proxies: the header is not trusted at all
])
def test_trusted_proxies_supply_the_client_address(make_app, factories, count, header, expected):
    """With N trusted proxies the Nth address from the right of X-Forwarded-For is the client (RFC 7239 7.4)."""
    app = make_app(TRUSTED_PROXY_COUNT=count)
    user = factories.user()
    assert _session_ip(app, user.email, **{"X-Forwarded-For": header}) == expected


def test_forged_header_does_not_escape_the_per_ip_login_limit(make_app):
    """Without trusted proxies, rotating X-Forwarded-For values still hits the one per-IP login limit."""
    app = make_app(TRUSTED_PROXY_COUNT=0, RATELIMIT_LOGIN_IP="2 per minute", RATELIMIT_LOGIN_ACCOUNT="100 per minute")
    client = app.test_client()
    statuses = [client.post(LOGIN, json={"email": f"u{n}@example.com", "password": "x"},
                            headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code for n in range(3)]
    assert statuses == [401, 401, 429]


def test_behind_a_trusted_proxy_each_client_has_its_own_login_limit(make_app):
    """With one trusted proxy, two clients behind it are limited separately (no shared bucket for the proxy)."""
    app = make_app(TRUSTED_PROXY_COUNT=1, RATELIMIT_LOGIN_IP="2 per minute", RATELIMIT_LOGIN_ACCOUNT="100 per minute")
    client = app.test_client()

    def attempt(ip: str) -> int:
        return client.post(LOGIN, json={"email": "x@example.com", "password": "x"},
                           headers={"X-Forwarded-For": ip}).status_code

    assert [attempt("203.0.113.1") for _ in range(3)] == [401, 401, 429]
    assert attempt("203.0.113.2") == 401
