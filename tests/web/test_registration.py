"""Registration (/register) and email verification by a single-use link."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import time_machine
from sqlalchemy import select

from idp.extensions import db
from idp.models import AccountToken, User
from tests.web.helpers import csrf_from, link_in, mail_text, sign_in, submit

NEW_PASSWORD = "Purple-Otter-Sings-7"


@pytest.fixture
def mail_app(make_app, smtp_sink):
    """The app sending its mail to the real SMTP sink."""
    return make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, ISSUER="http://localhost")


def _register(client, email: str, password: str = NEW_PASSWORD, name: str = "Ada Lovelace"):
    return submit(client, "/register", {"name": name, "email": email, "password": password, "confirm": password})


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_register_creates_an_unverified_account_and_mails_a_link(mail_app, smtp_sink):
    """A new address gets an account (email_verified false) and a verification mail with a link."""
    client = mail_app.test_client()
    response = _register(client, "ada@example.com")
    assert response.status_code == 200 and "Check your email" in response.get_data(as_text=True)
    message = smtp_sink.wait_for(1)[0]
    assert message["To"] == "ada@example.com" and "Confirm your email" in message["Subject"]
    assert link_in(message, "/verify-email?token=").startswith("http://localhost/verify-email?token=")
    with mail_app.app_context():
        user = db.session.scalars(select(User).where(User.email == "ada@example.com")).one()
        assert user.email_verified is False


def test_verification_link_confirms_the_address_once(mail_app, smtp_sink):
    """The link verifies the address, then cannot be used again (single use)."""
    client = mail_app.test_client()
    _register(client, "ada@example.com")
    link = _path(link_in(smtp_sink.wait_for(1)[0], "/verify-email"))
    assert client.get(link).status_code == 302
    with mail_app.app_context():
        assert db.session.scalars(select(User)).one().email_verified is True
    again = client.get(link)
    assert again.status_code == 400 and "cannot be used" in again.get_data(as_text=True)


def test_verification_link_expires_after_24_hours(mail_app, smtp_sink):
    """A verification link older than 24 hours is refused."""
    client = mail_app.test_client()
    with time_machine.travel("2026-03-01 10:00:00", tick=False) as clock:
        _register(client, "ada@example.com")
        link = _path(link_in(smtp_sink.wait_for(1)[0], "/verify-email"))
        clock.shift(24 * 3600 + 1)
        assert client.get(link).status_code == 400


def test_token_is_stored_only_as_a_hash(mail_app, smtp_sink):
    """The database holds the token's SHA-256, never the token sent in the mail."""
    client = mail_app.test_client()
    _register(client, "ada@example.com")
    token = link_in(smtp_sink.wait_for(1)[0], "/verify-email").split("token=")[1]
    with mail_app.app_context():
        stored = db.session.scalars(select(AccountToken)).one()
    assert stored.token_hash != token and len(stored.token_hash) == 64


def test_taken_address_gets_the_same_answer_and_a_notice_mail(mail_app, smtp_sink, factories):
    """Registering a taken address looks the same; its owner is mailed 'you already have an account'."""
    owner = factories.user(email="taken@example.com")
    client = mail_app.test_client()
    fresh = _register(client, "fresh@example.com").get_data(as_text=True)
    taken = _register(client, "taken@example.com").get_data(as_text=True)
    assert fresh.replace("fresh@example.com", "X") == taken.replace("taken@example.com", "X")
    messages = smtp_sink.wait_for(2)
    notice = next(m for m in messages if m["To"] == owner.email)
    assert "already have" in notice["Subject"] and "/forgot-password" in mail_text(notice)
    with mail_app.app_context():
        assert len(list(db.session.scalars(select(User)))) == 2


def test_password_policy_errors_show_on_the_field(client):
    """A common or short password is refused with the reason next to the password field."""
    response = _register(client, "ada@example.com", password="password")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="password-error"' in html and "too common" in html
    assert 'aria-describedby="password-hint password-error"' in html


def test_mismatched_confirmation_is_refused(client):
    """The confirmation must match the password."""
    response = submit(client, "/register", {"name": "Ada", "email": "ada@example.com",
                                            "password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"})
    assert response.status_code == 422 and "The passwords do not match." in response.get_data(as_text=True)


def test_invalid_email_is_refused_without_writing(client, app):
    """A malformed address answers 422 and creates nothing."""
    response = _register(client, "not-an-email")
    assert response.status_code == 422
    with app.app_context():
        assert db.session.scalars(select(User)).first() is None


def test_unverified_user_may_sign_in_and_sees_a_reminder(client):
    """An unverified user can sign in; the account page offers a new confirmation link."""
    _register(client, "ada@example.com")
    assert sign_in(client, "ada@example.com", NEW_PASSWORD).status_code == 302
    html = client.get("/account").get_data(as_text=True)
    assert "not confirmed yet" in html and "/account/verify-email" in html


def test_resend_replaces_the_earlier_link(mail_app, smtp_sink):
    """Asking for a new confirmation link mails one and makes the earlier one stop working."""
    client = mail_app.test_client()
    _register(client, "ada@example.com")
    first = _path(link_in(smtp_sink.wait_for(1)[0], "/verify-email"))
    sign_in(client, "ada@example.com", NEW_PASSWORD)
    assert submit(client, "/account", {}, action="/account/verify-email").status_code == 302
    second = _path(link_in(smtp_sink.wait_for(2)[1], "/verify-email"))
    assert client.get(first).status_code == 400
    assert client.get(second).status_code == 302


def test_registration_disabled_hides_page_and_link(make_app):
    """With REGISTRATION_ENABLED=false /register is a 404 page and the sign-in page has no link."""
    client = make_app(REGISTRATION_ENABLED=False).test_client()
    assert client.get("/register").status_code == 404
    assert 'href="/register"' not in client.get("/login").get_data(as_text=True)


@pytest.mark.parametrize("taken", [False, True])
def test_registration_mail_leaves_only_after_the_response(mail_app, smtp_sink, factories, taken):
    """Both registration mails (new account, address taken) go out after the response: no timing tell."""
    if taken:
        factories.user(email="ada@example.com")
    client = mail_app.test_client()
    token = csrf_from(client.get("/register").get_data(as_text=True))
    response = client.post("/register", headers={"Referer": "http://localhost/register"}, data={
        "csrf_token": token, "name": "Ada", "email": "ada@example.com", "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD})
    assert response.status_code == 200 and smtp_sink.wait_for(1, timeout=0.3) == []
    response.close()
    assert [m["To"] for m in smtp_sink.wait_for(1)] == ["ada@example.com"]


@pytest.mark.parametrize("name", ["Ada\x00Lovelace", "Ada\x1bLovelace"])
def test_refused_name_reads_the_same_for_new_and_taken_addresses(mail_app, factories, name):
    """A name the service refuses (control characters) is refused alike whether or not the address has an account."""
    factories.user(email="taken@example.com")
    client = mail_app.test_client()
    new = _register(client, "fresh@example.com", name=name)
    taken = _register(client, "taken@example.com", name=name)
    assert new.status_code == taken.status_code == 422

    def page(response, email: str) -> str:  # the CSRF token is signed with a timestamp: not compared
        return re.sub(r'value="[^"]*"', "", response.get_data(as_text=True)).replace(email, "X")

    assert page(new, "fresh@example.com") == page(taken, "taken@example.com")
    with mail_app.app_context():
        assert db.session.scalars(select(User).where(User.email == "fresh@example.com")).first() is None
