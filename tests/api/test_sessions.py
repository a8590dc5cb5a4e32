"""GET /api/v1/auth/sessions, POST /sessions/refresh, DELETE /sessions/<id>; idle and absolute windows."""
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, Session, SessionKind, User
from idp.services import sessions
from tests.factories import DEFAULT_PASSWORD

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)
SESSIONS = "/api/v1/auth/sessions"


def login(client, email, **kwargs) -> dict:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD}, **kwargs)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def bearer(data: dict) -> dict:
    return {"Authorization": f"Bearer {data['token']}"}


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def assert_401(response):
    body = response.get_json()
    assert response.status_code == 401 and body["success"] is False
    assert body["error"]["type"] == "UNAUTHORIZED" and body["message"] == "The session is invalid or has expired."
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.fixture
def small(make_app):
    """An app with a 60 s idle window and a 300 s absolute cap."""
    return make_app(SESSION_IDLE_TIMEOUT=60, SESSION_ABSOLUTE_TIMEOUT=300)


def test_list_sessions_shows_own_active_sessions_and_marks_current(app, client, factories):
    """Only the caller's active sessions are listed (API and browser), one marked current."""
    bob = factories.user(email="bob@example.com")
    factories.user(email="eve@example.com")
    first = login(client, "bob@example.com")
    second = login(client, "bob@example.com")
    revoked = login(client, "bob@example.com")
    login(client, "eve@example.com")
    client.post("/api/v1/auth/logout", headers=bearer(revoked))
    with app.app_context():
        browser, _ = sessions.create_session(db.session.get(User, bob.id), kind=SessionKind.BROWSER)
        db.session.commit()
        browser_id = browser.id
    response = client.get(SESSIONS, headers=bearer(second))
    body = response.get_json()
    assert response.status_code == 200 and body["meta"]["count"] == 3
    listed = {s["id"]: s for s in body["data"]}
    assert set(listed) == {first["session"]["id"], second["session"]["id"], browser_id}
    assert [s["id"] for s in body["data"] if s["current"]] == [second["session"]["id"]]
    assert listed[browser_id]["kind"] == "browser" and all(s["status"] == "ACTIVE" for s in body["data"])


def test_requests_slide_the_idle_window(small, factories):
    """Any authenticated request moves expires_at to now + idle (seed README: sliding timeout)."""
    factories.user(email="bob@example.com")
    client = small.test_client()
    with time_machine.travel(T0, tick=False) as traveller:
        data = login(client, "bob@example.com")
        assert parse(data["expires_at"]) == T0 + timedelta(seconds=60)
        traveller.shift(45)
        client.get("/api/v1/auth/me", headers=bearer(data))
        traveller.shift(45)  # 90 s after login, 45 s after the last request: still alive
        response = client.get(SESSIONS, headers=bearer(data))
        assert response.status_code == 200
        assert parse(response.get_json()["data"][0]["expires_at"]) == T0 + timedelta(seconds=150)


def test_refresh_extends_idle_window_and_returns_expiry(small, factories):
    """POST /sessions/refresh returns the session with expires_at = now + idle."""
    factories.user(email="bob@example.com")
    client = small.test_client()
    with time_machine.travel(T0, tick=False) as traveller:
        data = login(client, "bob@example.com")
        traveller.shift(30)
        response = client.post(f"{SESSIONS}/refresh", headers=bearer(data))
        session = response.get_json()["data"]["session"]
        assert response.status_code == 200 and session["id"] == data["session"]["id"]
        assert parse(session["expires_at"]) == T0 + timedelta(seconds=90)
        assert parse(session["absolute_expires_at"]) == T0 + timedelta(seconds=300)


def test_refresh_never_passes_the_absolute_cap(small, factories):
    """Near the cap, refresh returns expires_at = created_at + SESSION_ABSOLUTE_TIMEOUT."""
    factories.user(email="bob@example.com")
    client = small.test_client()
    with time_machine.travel(T0, tick=False) as traveller:
        data = login(client, "bob@example.com")
        for _ in range(5):
            traveller.shift(55)
            response = client.post(f"{SESSIONS}/refresh", headers=bearer(data))
        assert response.status_code == 200
        assert parse(response.get_json()["data"]["session"]["expires_at"]) == T0 + timedelta(seconds=300)
        traveller.shift(25)  # T0 + 300 s: the absolute cap, though only 25 s idle
        assert_401(client.post(f"{SESSIONS}/refresh", headers=bearer(data)))


def test_idle_session_expires_with_401_envelope(small, factories):
    """No request within the idle window: the token answers 401 in the envelope."""
    factories.user(email="bob@example.com")
    client = small.test_client()
    with time_machine.travel(T0, tick=False) as traveller:
        data = login(client, "bob@example.com")
        traveller.shift(60)
        assert_401(client.get("/api/v1/auth/me", headers=bearer(data)))
        assert_401(client.post(f"{SESSIONS}/refresh", headers=bearer(data)))


def test_revoke_one_of_own_sessions(app, client, factories):
    """DELETE ends that session only: its token stops working, the caller's keeps working."""
    factories.user(email="bob@example.com")
    phone, laptop = login(client, "bob@example.com"), login(client, "bob@example.com")
    response = client.delete(f"{SESSIONS}/{phone['session']['id']}", headers=bearer(laptop))
    assert response.status_code == 200 and response.get_json()["data"]["session"]["status"] == "REVOKED"
    assert_401(client.get("/api/v1/auth/me", headers=bearer(phone)))
    assert client.get("/api/v1/auth/me", headers=bearer(laptop)).status_code == 200
    listed = client.get(SESSIONS, headers=bearer(laptop)).get_json()["data"]
    assert [s["id"] for s in listed] == [laptop["session"]["id"]]
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "session.revoke")).one()
        assert event.target_id == phone["session"]["id"]


def test_revoking_the_current_session_signs_out(client, factories):
    """Revoking the session making the request ends it like a logout."""
    factories.user(email="bob@example.com")
    data = login(client, "bob@example.com")
    assert client.delete(f"{SESSIONS}/{data['session']['id']}", headers=bearer(data)).status_code == 200
    assert_401(client.get(SESSIONS, headers=bearer(data)))


@pytest.mark.parametrize("target", ["other_user", "unknown", "overlong"])
def test_revoke_someone_elses_or_unknown_session_is_404(app, client, factories, target):
    """Another user's session is reported as missing, exactly like an unknown id, and stays active."""
    factories.user(email="bob@example.com")
    factories.user(email="eve@example.com")
    bob, eve = login(client, "bob@example.com"), login(client, "eve@example.com")
    session_id = {"other_user": eve["session"]["id"], "unknown": "00000000-0000-4000-8000-000000000000",
                  "overlong": "x" * 600}[target]
    response = client.delete(f"{SESSIONS}/{session_id}", headers=bearer(bob))
    body = response.get_json()
    assert response.status_code == 404 and body["error"]["type"] == "NOT_FOUND"
    assert body["message"] == "Session not found."
    with app.app_context():
        assert db.session.get(Session, eve["session"]["id"]).status == "ACTIVE"


def test_session_endpoints_need_authentication(client):
    """Without a bearer token every session endpoint answers 401 in the envelope."""
    for method, path in [("get", SESSIONS), ("post", f"{SESSIONS}/refresh"), ("delete", f"{SESSIONS}/abc")]:
        response = getattr(client, method)(path)
        assert response.status_code == 401 and response.get_json()["error"]["type"] == "UNAUTHORIZED"


def test_browser_session_token_is_not_an_api_token(app, client, factories):
    """A browser SSO session token is refused as an API bearer token."""
    bob = factories.user(email="bob@example.com")
    with app.app_context():
        _, token = sessions.create_session(db.session.get(User, bob.id), kind=SessionKind.BROWSER)
        db.session.commit()
    assert_401(client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}))
