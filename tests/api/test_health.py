"""GET /api/health."""


def test_health_reports_database_and_version(client):
    """Health answers 200 in the envelope with database ok and the version."""
    response = client.get("/api/health")
    body = response.get_json()
    assert response.status_code == 200
    assert body["success"] is True and body["version"] == "1.0"
    assert body["data"]["database"] == "ok"
    assert body["data"]["version"]
    assert response.headers["X-Request-ID"] == body["request_id"]


def test_unknown_api_path_is_enveloped_404(client):
    """An unknown /api path answers 404 in the envelope, not an HTML page."""
    response = client.get("/api/v1/nope", headers={"X-Request-ID": "abc-123"})
    body = response.get_json()
    assert response.status_code == 404
    assert body["success"] is False and body["error"]["type"] == "NOT_FOUND"
    assert body["request_id"] == "abc-123" == response.headers["X-Request-ID"]
