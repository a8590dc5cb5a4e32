"""Hosted forms under rate limits: per client address (429 page), per recipient (silent), no enumeration.

The defaults are what these tests pin: RATELIMIT_REGISTER 10 per hour (shared with the API),
RATELIMIT_ACCOUNT_MAIL 5 per hour, RATELIMIT_MAIL_RECIPIENT 3 per 15 minutes.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import AuditEvent, User
from tests.factories import DEFAULT_PASSWORD
from tests.web.helpers import link_in, sign_in, submit

NEW_PASSWORD = "Purple-Otter-Sings-7"
PLACEHOLDER = "someone@example.net"


@pytest.fixture
def mail_app(make_app, smtp_sink):
    """The app with the default limits, sending its mail to the real SMTP sink."""
    return make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, ISSUER="http://localhost")


def _from(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


def _forgot(client, email: str, address: str = "203.0.113.7"):
    return submit(client, "/forgot-password", {"email": email}, **_from(address))


def _register(client, email: str, address: str = "203.0.113.7"):
    fields = {"name": "Ada Lovelace", "email": email, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    return submit(client, "/register", fields, **_from(address))


def _api_register(client, email: str, address: str = "203.0.113.7"):
    return client.post("/api/v1/auth/register", json={"email": email, "password": NEW_PASSWORD, "name": "Ada"},
                       **_from(address))


def _answer(response, email: str) -> tuple[int, str]:
    """Status and body, with the typed address (which the page repeats) replaced by one placeholder."""
    return response.status_code, response.get_data(as_text=True).replace(email, PLACEHOLDER)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _assert_429_page(response) -> None:
    html = response.get_data(as_text=True)
    assert response.status_code == 429 and response.mimetype == "text/html"
    assert int(response.headers["Retry-After"]) > 0
    assert "<h1>Too many attempts</h1>" in html and "Traceback" not in html
    assert "<title>Too many attempts" in html


def _refusals(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()
        return [row for row in rows if row.outcome == "failure" and row.details.get("reason") == "rate_limited"]


def _user_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def test_forgot_password_flood_from_one_address(mail_app, smtp_sink, factories):
    """30 asks for one user from one address: 5 normal pages, then 429 pages; at most 3 mails arrive."""
    user = factories.user(email="bob@example.com")
    client = mail_app.test_client()
    responses = [_forgot(client, user.email) for _ in range(30)]
    assert [r.status_code for r in responses] == [200] * 5 + [429] * 25
    assert all("Check your email" in r.get_data(as_text=True) for r in responses[:5])
    for refused in responses[5:]:
        _assert_429_page(refused)
    assert len(_refusals(mail_app, "account_mail")) == 25
    assert [m["To"] for m in smtp_sink.wait_for(4, timeout=1)] == [user.email] * 3


def test_forgot_password_from_many_addresses_reads_like_an_unknown_address(mail_app, smtp_sink, factories):
    """From 12 addresses, a user's answers equal an unknown address's, sent or held back; 3 mails arrive."""
    user = factories.user(email="bob@example.com")
    client = mail_app.test_client()
    unknown = _answer(_forgot(client, "nobody@example.com", "198.51.100.200"), "nobody@example.com")
    known = [_answer(_forgot(client, user.email, f"198.51.100.{n}"), user.email) for n in range(12)]
    assert known == [unknown] * 12
    assert [m["To"] for m in smtp_sink.wait_for(4, timeout=1)] == [user.email] * 3


def test_held_back_reset_asks_keep_the_delivered_link_working(mail_app, smtp_sink, factories):
    """Asks over the recipient limit issue no new token, so the last mailed reset link still works."""
    user = factories.user(email="bob@example.com")
    client = mail_app.test_client()
    for n in range(8):
        _forgot(client, user.email, f"198.51.100.{n}")
    last_mailed = _path(link_in(smtp_sink.wait_for(3)[2], "/reset-password"))
    assert client.get(last_mailed).status_code == 200


def test_forged_posts_are_refused_by_csrf_and_spend_no_budget(mail_app, factories):
    """A POST without the form's CSRF token is a 400 and leaves the address's budget untouched."""
    client = mail_app.test_client()
    for _ in range(10):
        forged = client.post("/forgot-password", data={"email": "bob@example.com"}, **_from("203.0.113.7"))
        assert forged.status_code == 400
    assert _forgot(client, "bob@example.com").status_code == 200


def test_hosted_register_allows_ten_per_address(mail_app):
    """The /register page takes 10 registrations from one address, then answers a 429 page; GETs are free."""
    client = mail_app.test_client()
    statuses = [_register(client, f"user{n}@example.com").status_code for n in range(11)]
    assert statuses == [200] * 10 + [429]
    _assert_429_page(_register(client, "late@example.com"))
    assert _user_count(mail_app) == 10
    assert len(_refusals(mail_app, "register")) == 2
    assert _register(client, "elsewhere@example.com", "198.51.100.9").status_code == 200


def test_page_and_api_registrations_share_one_budget(mail_app):
    """Registering on the page and through the API from one address spend one RATELIMIT_REGISTER budget."""
    client = mail_app.test_client()
    for n in range(5):
        assert _register(client, f"page{n}@example.com").status_code == 200
        assert _api_register(client, f"api{n}@example.com").status_code == 201
    _assert_429_page(_register(client, "page-late@example.com"))
    refused = _api_register(client, "api-late@example.com")
    assert refused.status_code == 429 and refused.get_json()["error"]["type"] == "RATE_LIMITED"
    assert _user_count(mail_app) == 10


def test_registering_a_taken_address_from_many_addresses_mails_its_owner_three_times(mail_app, smtp_sink, factories):
    """The "already registered" notice is bounded per recipient, and reads like a new address's answer."""
    owner = factories.user(email="ada@example.com")
    client = mail_app.test_client()
    fresh = _answer(_register(client, "fresh@example.com", "198.51.100.200"), "fresh@example.com")
    taken = [_answer(_register(client, owner.email, f"198.51.100.{n}"), owner.email) for n in range(6)]
    assert taken == [fresh] * 6
    received = [m["To"] for m in smtp_sink.wait_for(5, timeout=1)]
    assert received.count(owner.email) == 3 and received.count("fresh@example.com") == 1


def test_resend_verification_is_bounded_per_recipient(mail_app, smtp_sink, factories):
    """Resends from several addresses all read "sent"; the mailbox gets 3 links, the last of which works."""
    user = factories.user(email="ada@example.com", email_verified=False)
    client = mail_app.test_client()
    sign_in(client, user.email, DEFAULT_PASSWORD)
    for n in range(5):
        response = submit(client, "/account", {}, action="/account/verify-email", **_from(f"198.51.100.{n}"))
        assert response.status_code == 302
        assert "We sent a new confirmation link" in client.get("/account").get_data(as_text=True)
    messages = smtp_sink.wait_for(4, timeout=1)
    assert [m["To"] for m in messages] == [user.email] * 3
    assert client.get(_path(link_in(messages[2], "/verify-email"))).status_code == 302


def test_resend_verification_is_limited_per_address(mail_app, factories):
    """The resend form shares RATELIMIT_ACCOUNT_MAIL with /forgot-password: the 6th ask is a 429 page."""
    user = factories.user(email="ada@example.com", email_verified=False)
    client = mail_app.test_client()
    sign_in(client, user.email, DEFAULT_PASSWORD)
    for _ in range(3):
        assert _forgot(client, "someone@example.com").status_code == 200
    for _ in range(2):
        assert submit(client, "/account", {}, action="/account/verify-email", **_from("203.0.113.7")).status_code == 302
    _assert_429_page(submit(client, "/account", {}, action="/account/verify-email", **_from("203.0.113.7")))
