"""idp.services.account_mail: every account mail counts against its recipient's limit (RATELIMIT_MAIL_RECIPIENT)."""
from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest

from idp.models import TokenPurpose
from idp.security.ratelimits import mail_recipient_key
from idp.services import account_tokens
from idp.services.account_mail import (lifetime_text, send_account_invitation_mail, send_link_confirmation_mail,
                                       send_reset_mail, send_verification_mail)


@pytest.fixture
def mail_app(make_app, smtp_sink):
    return make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, ISSUER="http://localhost")


def _in_request(app, send):
    """Run `send` in a request, then finish that request as a WSGI server does (mail queued for after it leaves)."""
    with app.test_request_context():
        result = send()
        app.process_response(app.response_class()).close()
    return result


def _send_verifications(app, user, times: int) -> list[bool]:
    return _in_request(app, lambda: [send_verification_mail(user, f"token-{n}") for n in range(times)])


def test_mails_to_one_address_stop_at_the_limit_and_report_sent(mail_app, smtp_sink, factories):
    """3 per 15 minutes by default: later mails are not sent, yet the caller is told they were."""
    ada = factories.user(email="ada@example.com")
    assert _send_verifications(mail_app, ada, 5) == [True] * 5
    assert [m["To"] for m in smtp_sink.wait_for(4, timeout=1)] == [ada.email] * 3


def test_every_kind_of_account_mail_shares_the_recipients_budget(mail_app, smtp_sink, factories):
    """Verification and reset mails to one address draw on one budget; another address has its own."""
    ada, bob = factories.user(email="ada@example.com"), factories.user(email="bob@example.com")
    sent = _in_request(mail_app, lambda: [send_verification_mail(ada, "v-1"), send_reset_mail(ada, "r-1"),
                                          send_verification_mail(ada, "v-2"), send_reset_mail(ada, "r-2"),
                                          send_reset_mail(bob, "r-3")])
    assert sent == [True] * 5
    received = [m["To"] for m in smtp_sink.wait_for(5, timeout=1)]
    assert received.count(ada.email) == 3 and received.count(bob.email) == 1


def test_held_back_mail_is_logged_with_the_user_id_not_the_address(mail_app, smtp_sink, factories, caplog):
    """The INFO line names the user id; no log line carries the address."""
    ada = factories.user(email="ada@example.com")
    with caplog.at_level(logging.INFO):
        _send_verifications(mail_app, ada, 4)
    held = [r for r in caplog.records if "held back" in r.getMessage()]
    assert len(held) == 1 and held[0].levelno == logging.INFO and ada.id in held[0].getMessage()
    assert not any("ada@example.com" in r.getMessage() for r in caplog.records if r.name.startswith("idp"))


def test_recipient_limit_holds_with_rate_limits_disabled(make_app, smtp_sink, factories):
    """RATELIMIT_ENABLED=false lifts Flask-Limiter's limits, not the mailbox's protection."""
    app = make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, RATELIMIT_ENABLED=False)
    ada = factories.user(email="ada@example.com")
    _send_verifications(app, ada, 5)
    assert len(smtp_sink.wait_for(4, timeout=1)) == 3


def test_recipient_window_reopens(make_app, smtp_sink, factories):
    """Once the period has passed the address gets mail again (real clock: Redis keeps its own)."""
    app = make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, RATELIMIT_MAIL_RECIPIENT="1 per 1 second")
    ada = factories.user(email="ada@example.com")
    _send_verifications(app, ada, 2)
    time.sleep(1.1)
    _send_verifications(app, ada, 1)
    assert len(smtp_sink.wait_for(3, timeout=1)) == 2


def test_recipient_key_is_a_hash_of_the_canonical_address():
    """The key is the same for any case or surrounding space, and never holds the address."""
    key = mail_recipient_key(" Ada@Example.COM ")
    assert key == mail_recipient_key("ada@example.com") != mail_recipient_key("bob@example.com")
    assert "ada" not in key.lower() and "example" not in key.lower()


def test_operator_mail_of_the_contact_form_is_not_recipient_limited(make_app, smtp_sink):
    """Enquiries go to CONTACT_EMAIL under the contact form's per-IP limit only, not a recipient limit."""
    app = make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, CONTACT_EMAIL="team@example.com")
    client = app.test_client()
    enquiry = {"name": "Ada Lovelace", "email": "ada@example.com", "type": "demo", "message": "Hello there, team."}
    for n in range(5):
        response = client.post("/api/v1/contact", json=enquiry, environ_base={"REMOTE_ADDR": f"198.51.100.{n}"})
        assert response.status_code == 201
    assert [m["To"] for m in smtp_sink.wait_for(5)] == ["team@example.com"] * 5


def test_lifetime_text_is_readable():
    """A link's lifetime is told to people in the largest whole unit."""
    assert [lifetime_text(s) for s in (604800, 86400, 7200, 90, 61)] == [
        "7 days", "1 day", "2 hours", "90 seconds", "61 seconds"]
    assert lifetime_text(timedelta(minutes=30)) == "30 minutes"


def test_each_mail_states_the_lifetime_its_link_really_has(mail_app, smtp_sink, factories, monkeypatch):
    """The expiry a mail announces comes from the lifetime the link is issued with, not from the template."""
    monkeypatch.setitem(account_tokens.LIFETIMES, TokenPurpose.RESET_PASSWORD, timedelta(minutes=45))
    monkeypatch.setitem(account_tokens.LIFETIMES, TokenPurpose.SET_PASSWORD, timedelta(hours=48))
    monkeypatch.setitem(account_tokens.LIFETIMES, TokenPurpose.VERIFY_EMAIL, timedelta(hours=12))
    users = [factories.user(email=f"u{n}@example.com") for n in range(4)]
    _in_request(mail_app, lambda: [send_reset_mail(users[0], "r"), send_account_invitation_mail(users[1], "s"),
                                   send_verification_mail(users[2], "v"),
                                   send_link_confirmation_mail(users[3], "l", provider="GitHub",
                                                               lifetime=timedelta(minutes=20))])
    by_recipient = {m["To"]: m for m in smtp_sink.wait_for(4, timeout=2)}
    expected = {users[0].email: "expires in 45 minutes", users[1].email: "expires in 2 days",
                users[2].email: "expires in 12 hours", users[3].email: "expires in 20 minutes"}
    for address, phrase in expected.items():
        message = by_recipient[address]
        for part in message.walk():
            if part.get_content_maintype() == "text":
                text = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
                assert phrase in " ".join(text.split()), (address, part.get_content_type())
