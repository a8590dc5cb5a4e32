"""CORS: only CORS_ORIGINS may read /api/* from a browser; nothing else gets CORS headers."""
from __future__ import annotations

import pytest

ALLOWED, OTHER = "https://app.example", "https://evil.example"


@pytest.fixture
def cors_client(make_app):
    return make_app(CORS_ORIGINS=[ALLOWED, "https://admin.example"]).test_client()


@pytest.mark.parametrize("path", ["/api/health", "/api/v1/nope"])
def test_allowed_origin_gets_allow_origin_on_api(cors_client, path):
    """An allowed origin is echoed in Access-Control-Allow-Origin, errors included, with the request id exposed."""
    headers = cors_client.get(path, headers={"Origin": ALLOWED}).headers
    assert headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "X-Request-ID" in headers["Access-Control-Expose-Headers"]
    assert "Origin" in headers.get("Vary", "")
    assert "Access-Control-Allow-Credentials" not in headers


def test_other_origin_gets_no_cors_headers(cors_client):
    """An origin not in CORS_ORIGINS gets no Access-Control-Allow-Origin, so the browser blocks the read."""
    headers = cors_client.get("/api/health", headers={"Origin": OTHER}).headers
    assert "Access-Control-Allow-Origin" not in headers


def test_preflight_from_allowed_origin(cors_client):
    """A preflight for a JSON POST with a bearer token is allowed for a listed origin (Fetch standard CORS)."""
    response = cors_client.options("/api/v1/contact", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Content-Type, Authorization"})
    headers = response.headers
    assert response.status_code == 200 and headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in headers["Access-Control-Allow-Methods"]
    allowed_headers = {name.strip().lower() for name in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "authorization"} <= allowed_headers


def test_preflight_from_other_origin_is_not_allowed(cors_client):
    """A preflight from an unlisted origin carries no allow headers."""
    headers = cors_client.options("/api/v1/contact", headers={
        "Origin": OTHER, "Access-Control-Request-Method": "POST"}).headers
    assert "Access-Control-Allow-Origin" not in headers and "Access-Control-Allow-Methods" not in headers


@pytest.mark.parametrize("path", ["/no-such-page", "/login"])
def test_no_cors_on_pages(cors_client, path):
    """Hosted pages outside /api/* never answer with CORS headers, even to an allowed origin."""
    headers = cors_client.get(path, headers={"Origin": ALLOWED}).headers
    assert "Access-Control-Allow-Origin" not in headers


def test_preflight_of_a_protected_route_needs_no_token(cors_client):
    """Browsers send preflights without credentials, so a bearer-protected route still answers 200."""
    response = cors_client.options("/api/v1/organizations/some-id/members/other-id/role", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
