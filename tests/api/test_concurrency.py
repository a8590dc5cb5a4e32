"""Concurrent logins and session refreshes over real HTTP against PostgreSQL."""
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
import requests
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import AuditEvent, Session, User
from tests.factories import DEFAULT_PASSWORD
from tests.servers import LiveServer

pytestmark = pytest.mark.postgres
WORKERS = 20


@pytest.fixture
def server(make_app):
    """The app over HTTP with limits high enough for the burst (the limits are tested elsewhere)."""
    served = make_app(RATELIMIT_LOGIN_IP="1000 per minute", RATELIMIT_LOGIN_ACCOUNT="1000 per minute",
                      RATELIMIT_REGISTER="1000 per minute")
    live = LiveServer(served)
    live.start()
    yield live
    live.stop()


def _login(url: str) -> requests.Response:
    return requests.post(f"{url}/api/v1/auth/login", json={"email": "bob@example.com", "password": DEFAULT_PASSWORD},
                         timeout=30)


def test_twenty_concurrent_logins_all_succeed(server, factories):
    """20 simultaneous logins of one account each get 200 and their own session."""
    factories.user(email="bob@example.com")
    with ThreadPoolExecutor(WORKERS) as pool:
        responses = list(pool.map(lambda _: _login(server.url), range(WORKERS)))
    assert [r.status_code for r in responses] == [200] * WORKERS
    tokens = {r.json()["data"]["token"] for r in responses}
    assert len(tokens) == WORKERS
    with server.app.app_context():
        assert db.session.scalar(select(func.count(Session.id))) == WORKERS
        assert db.session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "login")) == WORKERS


def test_twenty_concurrent_refreshes_of_one_session_all_succeed(server, factories):
    """20 simultaneous refreshes of the same session each get 200 and a consistent expiry."""
    factories.user(email="bob@example.com")
    token = _login(server.url).json()["data"]["token"]
    headers = {"Authorization": f"Bearer {token}"}

    def refresh(_):
        return requests.post(f"{server.url}/api/v1/auth/sessions/refresh", headers=headers, timeout=30)

    with ThreadPoolExecutor(WORKERS) as pool:
        responses = list(pool.map(refresh, range(WORKERS)))
    assert [r.status_code for r in responses] == [200] * WORKERS
    sessions = {r.json()["data"]["session"]["id"] for r in responses}
    assert len(sessions) == 1
    with server.app.app_context():
        [row] = db.session.scalars(select(Session)).all()
        assert row.status == "ACTIVE"
        returned = {datetime.fromisoformat(r.json()["data"]["session"]["expires_at"]) for r in responses}
        assert row.expires_at in returned  # the last writer's slide is the one kept


def test_concurrent_registrations_of_one_email_create_one_account(server):
    """Racing registrations of the same email: one 201, the others a 409 CONFLICT, never a 500."""
    body = {"email": "race@example.com", "password": "Long-Enough-Pass-1", "name": "Racer"}

    def register(_):
        return requests.post(f"{server.url}/api/v1/auth/register", json=body, timeout=30)

    with ThreadPoolExecutor(WORKERS) as pool:
        codes = sorted(r.status_code for r in pool.map(register, range(WORKERS)))
    assert codes == [201] + [409] * (WORKERS - 1)
    with server.app.app_context():
        assert db.session.scalar(select(func.count(User.id))) == 1
