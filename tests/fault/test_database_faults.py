"""A lost database connection (issue #9 item 3) answers 503 with Retry-After in each surface's format,
never a 500, and the next request succeeds on a fresh connection.

Deterministic tests make the app's own engine fail a statement (or a commit) the way a terminated
connection does; the PostgreSQL test terminates real backends under load.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time

import psycopg
import pytest
import requests
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session as OrmSession

from idp.errors import DatabaseUnavailable
from idp.extensions import db, idle_connection_ping
from tests.api.envelope_assertions import assert_error
from tests.conftest import DATABASE_URL
from tests.factories import DEFAULT_PASSWORD
from tests.servers import LiveServer

RETRY_AFTER = str(DatabaseUnavailable.RETRY_AFTER_SECONDS)
EMAIL = "ada@example.com"
SECRET_SQL = "SELECT secret_column FROM users WHERE password_hash = 'hunter2'"


def terminated(statement: str = SECRET_SQL) -> OperationalError:
    """What SQLAlchemy raises when PostgreSQL ends the connection under a statement."""
    return OperationalError(statement, {"p": "hunter2"},
                            Exception("terminating connection due to administrator command"),
                            connection_invalidated=True)


class DatabaseOutage:
    """Every statement on the app's engine (or only commits) fails as a terminated connection."""

    def __init__(self, app):
        with app.app_context():
            self.engine = db.engine

    def _fail_statement(self, conn, cursor, statement, parameters, context, executemany):
        raise terminated(statement)

    def _fail_commit(self, session):
        raise terminated("COMMIT")

    def statements(self):
        event.listen(self.engine, "before_cursor_execute", self._fail_statement)
        return self

    def commits(self):
        event.listen(OrmSession, "before_commit", self._fail_commit)
        return self

    def end(self) -> None:
        if event.contains(self.engine, "before_cursor_execute", self._fail_statement):
            event.remove(self.engine, "before_cursor_execute", self._fail_statement)
        if event.contains(OrmSession, "before_commit", self._fail_commit):
            event.remove(OrmSession, "before_commit", self._fail_commit)


@pytest.fixture
def outage(app):
    made = DatabaseOutage(app)
    yield made
    made.end()


def basic_auth(client_id: str, secret: str = "s3cret-client-secret") -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def login(client, password: str = DEFAULT_PASSWORD):
    return client.post("/api/v1/auth/login", json={"email": EMAIL, "password": password})


def assert_retry_after(response) -> None:
    assert response.status_code == 503 and response.headers["Retry-After"] == RETRY_AFTER
    text = response.get_data(as_text=True)
    assert "hunter2" not in text and "secret_column" not in text and "Traceback" not in text


def test_api_answers_503_envelope_then_recovers(client, factories, outage):
    """/api: 503 SERVICE_UNAVAILABLE in the envelope with Retry-After (RFC 9110 15.6.4, 10.2.3); the next
    request, on a working connection, signs in."""
    factories.user(email=EMAIL)
    outage.statements()
    response = login(client)
    assert_retry_after(response)
    assert assert_error(response, 503, "SERVICE_UNAVAILABLE")["error"]["details"] == {}
    outage.end()
    assert login(client).status_code == 200


def test_token_endpoint_answers_503_temporarily_unavailable(client, factories, outage):
    """/oauth2/token: RFC 6749 5.2 JSON with error temporarily_unavailable (the code 4.1.2.1 defines),
    503 and Retry-After, not cached; then the grant works."""
    rp = factories.client(grant_types=["client_credentials"], scope="reports:read")
    outage.statements()
    response = client.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=basic_auth(rp.client_id))
    assert_retry_after(response)
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert response.headers["Cache-Control"] == "no-store"
    outage.end()
    response = client.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=basic_auth(rp.client_id))
    assert response.status_code == 200 and response.get_json()["access_token"]


def test_hosted_page_answers_503_html(client, outage):
    """A hosted page renders the HTML error page with 503, Retry-After and the reference."""
    outage.statements()
    response = client.get("/login?request=unknown-request-id")
    assert_retry_after(response)
    html = response.get_data(as_text=True)
    assert response.mimetype == "text/html" and response.headers["X-Request-ID"] in html
    assert "<h1>Temporarily unavailable</h1>" in html
    outage.end()
    assert client.get("/login?request=unknown-request-id").status_code == 200


def test_authorization_endpoint_answers_503_page_not_a_redirect(client, factories, outage):
    """/oauth2/authorize cannot check the redirect URI without the database: an HTML 503, never a redirect."""
    rp = factories.client()
    outage.statements()
    response = client.get("/oauth2/authorize", query_string={"response_type": "code", "client_id": rp.client_id,
                                                             "redirect_uri": "https://rp.example/callback",
                                                             "scope": "openid", "state": "s"})
    assert_retry_after(response)
    assert response.mimetype == "text/html" and "Location" not in response.headers


def test_commit_lost_is_503_and_nothing_half_done(app, client, outage):
    """A connection that dies at commit (finish_transaction) answers 503 with Retry-After, not a 500."""
    outage.commits()
    response = client.post("/api/v1/auth/register", json={"email": EMAIL, "password": "Long-Enough-Pass-1",
                                                            "name": "Ada"})
    assert_retry_after(response)
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    outage.end()
    assert client.post("/api/v1/auth/register", json={"email": EMAIL, "password": "Long-Enough-Pass-1",
                                                       "name": "Ada"}).status_code == 201


def test_failure_audit_lost_at_commit_is_503(client, factories, outage):
    """A refused login whose failure audit cannot be written (the connection died) answers 503, not a 500."""
    factories.user(email=EMAIL)
    outage.commits()
    response = login(client, "Wrong-Password-1")
    assert_retry_after(response)
    assert_error(response, 503, "SERVICE_UNAVAILABLE")


def test_outage_is_logged_as_a_warning_with_the_request_id(client, factories, outage, caplog):
    """The operator sees a one-line WARNING with the request id and the driver's message; no traceback,
    no SQL and no parameters."""
    factories.user(email=EMAIL)
    outage.statements()
    with caplog.at_level(logging.WARNING):
        response = login(client)
    [record] = [r for r in caplog.records if "SERVICE_UNAVAILABLE" in r.getMessage()]
    assert record.levelno == logging.WARNING and record.exc_info is None
    message = record.getMessage()
    assert response.headers["X-Request-ID"] in message and "administrator command" in message
    assert "hunter2" not in caplog.text and "secret_column" not in caplog.text


def test_idle_connection_whose_ping_fails_is_replaced_before_the_request(client, factories, monkeypatch):
    """A pooled connection idle past the threshold is pinged before use; one that fails the ping is
    replaced by a fresh connection, so the request answers 200, not 503."""
    factories.user(email=EMAIL)
    assert login(client).status_code == 200
    killed = []

    def ping_finding_the_first_dead(dbapi_connection) -> bool:
        if killed:
            return True
        dbapi_connection.close()  # really dead: handed out anyway, it would fail the request
        killed.append(dbapi_connection)
        return False

    monkeypatch.setattr(idle_connection_ping, "idle_seconds", 0.0)
    monkeypatch.setattr(idle_connection_ping, "ping", ping_finding_the_first_dead)
    assert login(client).status_code == 200
    assert len(killed) == 1


# PostgreSQL: backends terminated under load -------------------------------------------------------

TERMINATE_OTHERS = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")
LOAD_SECONDS_LIMIT = 60


class BackendKiller(threading.Thread):
    """Terminates every other backend of the test database every 20 ms, from its own connection."""

    def __init__(self, url: str, interval: float = 0.02):
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.stopping = threading.Event()
        self.terminated = 0

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            while not self.stopping.is_set():
                self.terminated += len(connection.execute(TERMINATE_OTHERS).fetchall())
                time.sleep(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)


def _answers(session: requests.Session, kind: str, send, count: int, seen: list) -> None:
    for _ in range(count):
        try:
            response = send(session)
            seen.append((kind, response.status_code, response.headers, response.text))
        except requests.RequestException as exc:  # a dropped HTTP connection is as bad as a 500
            seen.append((kind, None, {}, repr(exc)))


def _assert_503_in_format(kind: str, headers, text: str) -> None:
    assert headers.get("Retry-After") == RETRY_AFTER, (kind, dict(headers))
    if kind == "api":
        body = json.loads(text)
        assert body["success"] is False and body["code"] == 503 and body["error"]["type"] == "SERVICE_UNAVAILABLE"
    elif kind == "token":
        assert json.loads(text)["error"] == "temporarily_unavailable"
    else:
        assert headers["Content-Type"].startswith("text/html")


@pytest.mark.postgres
def test_terminated_backends_under_load_answer_503_never_500(make_app, factories):
    """100 API logins, 10 page loads and 10 token requests while every backend is terminated every 20 ms:
    each answer is a 200 or a 503 with Retry-After in its surface's format, and once the killing stops
    the next request succeeds."""
    served = make_app(RATELIMIT_ENABLED=False)
    factories.user(email=EMAIL)
    rp = factories.client(grant_types=["client_credentials"], scope="reports:read")
    server = LiveServer(served)
    server.start()
    killer = BackendKiller(make_url(DATABASE_URL).render_as_string(hide_password=False).replace(
        "postgresql+psycopg://", "postgresql://"))
    seen: list = []
    senders = {
        "api": lambda s: s.post(f"{server.url}/api/v1/auth/login", json={"email": EMAIL, "password": DEFAULT_PASSWORD},
                                timeout=10),
        "page": lambda s: s.get(f"{server.url}/login?request=unknown-request-id", timeout=10),
        "token": lambda s: s.post(f"{server.url}/oauth2/token", data={"grant_type": "client_credentials"},
                                  headers=basic_auth(rp.client_id), timeout=10),
    }
    plan = [("api", 25)] * 4 + [("page", 10), ("token", 10)]
    workers = [threading.Thread(target=_answers, args=(requests.Session(), kind, senders[kind], count, seen),
                                daemon=True) for kind, count in plan]
    try:
        killer.start()
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + LOAD_SECONDS_LIMIT
        for worker in workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        killer.stop()
        assert not any(worker.is_alive() for worker in workers), "the load did not finish in time"
        after = senders["api"](requests.Session())
    finally:
        killer.stop()
        server.stop()
    assert len(seen) == 120 and killer.terminated > 0
    refused = [(kind, status, headers, text) for kind, status, headers, text in seen if status != 200]
    assert all(status == 503 for _, status, _, _ in refused), [(k, s, t[:200]) for k, s, _, t in refused if s != 503]
    for kind, _, headers, text in refused:
        _assert_503_in_format(kind, headers, text)
    assert after.status_code == 200 and after.json()["data"]["token"]


# PostgreSQL: every connection ended between requests (what a restart does) ------------------------

@pytest.fixture
def fresh_pool(app):
    """The tests below count on which pooled connections were in use moments ago; a connection an
    earlier test left in the pool (killed there, idle since) would be pinged or not by that test's
    threshold instead of this one's. Each starts with an empty pool."""
    with app.app_context():
        db.engine.dispose()


def terminate_every_backend() -> int:
    url = make_url(DATABASE_URL).render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as connection:
        return len(connection.execute(TERMINATE_OTHERS).fetchall())


@pytest.mark.postgres
def test_restart_while_idle_costs_no_request(client, factories, monkeypatch, fresh_pool):
    """PostgreSQL ends every pooled connection while the app is idle: the pool pings the idle
    connection before handing it out, finds it dead, reconnects, and the next login answers 200."""
    factories.user(email=EMAIL)
    assert login(client).status_code == 200
    assert terminate_every_backend() > 0
    monkeypatch.setattr(idle_connection_ping, "idle_seconds", 0.0)  # as if idle for longer than the threshold
    assert login(client).status_code == 200


@pytest.mark.postgres
def test_connection_ended_moments_after_use_is_one_503_then_fresh_connections(client, factories, monkeypatch,
                                                                            fresh_pool):
    """A connection in use moments ago is not pinged (no round trip on the hot path): ended under it,
    the request answers 503 with Retry-After (RFC 9110 15.6.4), the pool discards its older
    connections, and the next login succeeds."""
    monkeypatch.setattr(idle_connection_ping, "idle_seconds", 3600.0)
    factories.user(email=EMAIL)
    assert login(client).status_code == 200
    assert terminate_every_backend() > 0
    assert_retry_after(login(client))
    assert login(client).status_code == 200
