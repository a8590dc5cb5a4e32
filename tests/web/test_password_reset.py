"""Forgotten password: emailed single-use link, 30-minute life, same answer for unknown addresses."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import time_machine
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, Session, SessionStatus
from tests.factories import DEFAULT_PASSWORD
from tests.web.helpers import csrf_from, link_in, sign_in, submit

NEW_PASSWORD = "Quiet-Harbour-Lights-9"


@pytest.fixture
def mail_app(make_app, smtp_sink):
    """The app sending its mail to the real SMTP sink."""
    return make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, ISSUER="http://localhost")


def _ask(client, email: str):
    return submit(client, "/forgot-password", {"email": email})


def _reset_path(smtp_sink, count: int = 1) -> str:
    url = link_in(smtp_sink.wait_for(count)[count - 1], "/reset-password")
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _set_password(client, path: str, password: str = NEW_PASSWORD):
    token = path.split("token=")[1]
    return submit(client, path, {"token": token, "password": password, "confirm": password},
                  action="/reset-password")


def test_unknown_address_gets_the_same_answer_and_no_mail(mail_app, smtp_sink, factories):
    """Asking for an unknown address reads exactly like a known one, and mails nobody."""
    user = factories.user(email="known@example.com")
    client = mail_app.test_client()
    known = _ask(client, user.email).get_data(as_text=True)
    unknown = _ask(client, "unknown@example.com").get_data(as_text=True)
    assert known.replace("known@", "X@") == unknown.replace("unknown@", "X@")
    assert [m["To"] for m in smtp_sink.wait_for(2, timeout=0.5)] == [user.email]


def test_reset_sets_the_password_and_ends_every_session(mail_app, smtp_sink, factories):
    """The link sets a new password, signs the user out everywhere and is audited."""
    user = factories.user()
    client = mail_app.test_client()
    other_device = mail_app.test_client()
    sign_in(other_device, user.email)
    _ask(client, user.email)
    response = _set_password(client, _reset_path(smtp_sink))
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert other_device.get("/account").status_code == 302
    with mail_app.app_context():
        assert {s.status for s in db.session.scalars(select(Session))} == {SessionStatus.REVOKED.value}
        assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "password.reset")).one()
    assert sign_in(client, user.email).status_code == 401
    assert sign_in(client, user.email, NEW_PASSWORD).status_code == 302


def test_reset_link_works_once(mail_app, smtp_sink, factories):
    """A used reset link is refused the second time."""
    user = factories.user()
    client = mail_app.test_client()
    _ask(client, user.email)
    path = _reset_path(smtp_sink)
    assert _set_password(client, path).status_code == 302
    again = client.get(path)
    assert again.status_code == 400 and "Ask for a new link" in again.get_data(as_text=True)


def test_reset_link_expires_after_30_minutes(mail_app, smtp_sink, factories):
    """A reset link older than 30 minutes is refused."""
    user = factories.user()
    client = mail_app.test_client()
    with time_machine.travel("2026-03-01 10:00:00", tick=False) as clock:
        _ask(client, user.email)
        path = _reset_path(smtp_sink)
        clock.shift(29 * 60)
        assert client.get(path).status_code == 200
        clock.shift(2 * 60)
        assert client.get(path).status_code == 400


def test_newer_reset_link_replaces_older_one(mail_app, smtp_sink, factories):
    """Asking twice makes the first link stop working."""
    user = factories.user()
    client = mail_app.test_client()
    _ask(client, user.email)
    first = _reset_path(smtp_sink, 1)
    _ask(client, user.email)
    second = _reset_path(smtp_sink, 2)
    assert client.get(first).status_code == 400
    assert client.get(second).status_code == 200


def test_weak_new_password_is_refused_and_link_kept(mail_app, smtp_sink, factories):
    """A password the policy refuses shows the reason and leaves the link usable."""
    user = factories.user()
    client = mail_app.test_client()
    _ask(client, user.email)
    path = _reset_path(smtp_sink)
    weak = _set_password(client, path, "password")
    assert weak.status_code == 422 and "too common" in weak.get_data(as_text=True)
    assert _set_password(client, path).status_code == 302


def test_forged_token_is_refused(client):
    """A made-up token shows the invalid-link page, not a form."""
    response = client.get("/reset-password?token=made-up")
    assert response.status_code == 400 and 'name="password"' not in response.get_data(as_text=True)


def test_reset_mail_link_uses_issuer_not_host_header(make_app, smtp_sink, factories):
    """The mailed link is rooted at ISSUER even when the request carries a forged Host."""
    app = make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, ISSUER="https://id.example.com")
    user = factories.user()
    client = app.test_client()
    submit(client, "/forgot-password", {"email": user.email}, base_url="https://evil.example")
    assert link_in(smtp_sink.wait_for(1)[0], "/reset-password").startswith("https://id.example.com/reset-password")


def test_reset_mail_leaves_only_after_the_response(mail_app, smtp_sink, factories):
    """The reset mail goes to SMTP once the response is sent, so answer time cannot tell an account exists."""
    user = factories.user(email="known@example.com")
    client = mail_app.test_client()
    token = csrf_from(client.get("/forgot-password").get_data(as_text=True))
    response = client.post("/forgot-password", data={"csrf_token": token, "email": user.email},
                           headers={"Referer": "http://localhost/forgot-password"})
    assert response.status_code == 200 and smtp_sink.wait_for(1, timeout=0.3) == []
    response.close()  # what the WSGI server does after the last byte
    assert [m["To"] for m in smtp_sink.wait_for(1)] == [user.email]


def test_failed_request_sends_no_deferred_mail(mail_app, smtp_sink, factories, monkeypatch):
    """A reset request whose commit fails mails no link (its token was never stored)."""
    from idp.services import password_reset

    user = factories.user(email="known@example.com")

    def issue_then_fail(email):
        real_request_reset(email)
        raise RuntimeError("the database went away")

    real_request_reset = password_reset.request_reset
    monkeypatch.setattr(password_reset, "request_reset", issue_then_fail)
    response = _ask(mail_app.test_client(), user.email)
    assert response.status_code == 500 and smtp_sink.wait_for(1, timeout=0.3) == []


def test_reset_ends_api_bearer_sessions_too(mail_app, smtp_sink, factories):
    """After a reset, API bearer tokens issued before it answer 401: a reset ends sessions of every kind."""
    user = factories.user()
    client = mail_app.test_client()
    login = client.post("/api/v1/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD})
    headers = {"Authorization": f"Bearer {login.get_json()['data']['token']}"}
    _ask(client, user.email)
    assert _set_password(client, _reset_path(smtp_sink)).status_code == 302
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
