"""GET /api/health: database and Redis status in the envelope."""
from __future__ import annotations

import pytest
import redis

from idp.services.redis_guard import RedisGuard
from tests.conftest import REDIS_URL

UNREACHABLE_DATABASE = "postgresql://postgres@127.0.0.1:1/unreachable"


def test_health_reports_database_and_version(client):
    """Health answers 200 in the envelope with database ok and the version."""
    response = client.get("/api/health")
    body = response.get_json()
    assert response.status_code == 200
    assert body["success"] is True and body["version"] == "1.0" and body["code"] == 200
    assert body["data"]["database"] == "ok" and body["data"]["status"] in ("ok", "degraded")
    assert body["data"]["version"]
    assert response.headers["X-Request-ID"] == body["request_id"]


def test_unknown_api_path_is_enveloped_404(client):
    """An unknown /api path answers 404 in the envelope, not an HTML page."""
    request_id = "5b0bd1c4-6f0e-4f43-9d39-7c5d1b0e2a11"
    response = client.get("/api/v1/nope", headers={"X-Request-ID": request_id})
    body = response.get_json()
    assert response.status_code == 404
    assert body["success"] is False and body["error"]["type"] == "NOT_FOUND"
    assert body["request_id"] == request_id == response.headers["X-Request-ID"]


def test_unreachable_database_is_503_without_internals(make_app):
    """With the database down, health is 503 SERVICE_UNAVAILABLE naming the part that is down, not why."""
    response = make_app(SQLALCHEMY_DATABASE_URI=UNREACHABLE_DATABASE).test_client().get("/api/health")
    body = response.get_json()
    assert response.status_code == 503 and body["success"] is False and body["code"] == 503
    assert body["error"]["type"] == "SERVICE_UNAVAILABLE"
    assert body["error"]["details"]["database"] == "down" and body["error"]["details"]["version"]
    text = response.get_data(as_text=True)
    assert "psycopg" not in text and "127.0.0.1:1" not in text and "refused" not in text.lower()


def test_unreachable_database_health_is_logged_with_the_cause(make_app, caplog):
    """The operator finds the real cause in the log."""
    make_app(SQLALCHEMY_DATABASE_URI=UNREACHABLE_DATABASE).test_client().get("/api/health")
    assert "database check failed" in caplog.text


def test_redis_not_configured_is_reported(app, client, monkeypatch):
    """Without REDIS_URL (embedded default) health says redis not_configured and status ok."""
    monkeypatch.setitem(app.extensions, "redis", None)
    data = client.get("/api/health").get_json()["data"]
    assert data["redis"] == "not_configured" and data["status"] == "ok" and data["database"] == "ok"


def test_redis_down_degrades_but_stays_200(app, client, monkeypatch):
    """An unreachable Redis is reported as down with status degraded; the service still answers 200."""
    # Swapped in on the shared app: a second app would also rebind the shared rate limiter to it.
    unreachable = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=1, socket_connect_timeout=1)
    monkeypatch.setitem(app.extensions, "redis", RedisGuard(unreachable, retry_interval=5))
    response = client.get("/api/health")
    data = response.get_json()["data"]
    assert response.status_code == 200 and data["redis"] == "down" and data["status"] == "degraded"


@pytest.mark.redis
def test_redis_up_is_reported_ok(app, client, monkeypatch):
    """With a reachable Redis, health says redis ok."""
    monkeypatch.setitem(app.extensions, "redis", RedisGuard(redis.Redis.from_url(REDIS_URL), retry_interval=5))
    data = client.get("/api/health").get_json()["data"]
    assert data["redis"] == "ok" and data["status"] == "ok"
