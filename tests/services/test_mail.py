"""idp.services.mail: SMTP delivery, the development outbox, failures and header safety."""
from __future__ import annotations

import logging
import socket
from email import message_from_bytes, policy

import pytest

from idp.services.mail import MailDeliveryError, send_mail

SECRET_LINK = "https://idp.example/reset?token=s3cr3t-token-value"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_app(make_app, smtp_sink):
    return make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, MAIL_FROM="Authy2 <no-reply@idp.example>")


def test_send_mail_delivers_over_smtp(smtp_app, smtp_sink):
    """The message reaches the SMTP server with From, To, Subject, Date, Message-ID and the text."""
    with smtp_app.app_context():
        message_id = send_mail("ada@example.com", "Hello", "Plain body\n")
    [message] = smtp_sink.wait_for(1)
    assert smtp_sink.envelopes[0].rcpt_tos == ["ada@example.com"]
    assert message["To"] == "ada@example.com" and message["Subject"] == "Hello"
    assert message["From"] == "Authy2 <no-reply@idp.example>" and message["Message-ID"] == message_id
    assert message["Date"] and message.get_payload(decode=True).decode().strip() == "Plain body"


def test_send_mail_adds_html_alternative_and_unicode(smtp_app, smtp_sink):
    """With html, the mail is multipart/alternative; non-ASCII text survives the trip."""
    with smtp_app.app_context():
        send_mail(["zoe@example.com", "li@example.com"], "Grüße 你好", "Zoë says hi", html="<p>Zoë</p>")
    [raw] = smtp_sink.wait_for(1)
    message = message_from_bytes(raw.as_bytes(), policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    assert str(message["Subject"]) == "Grüße 你好"
    assert message.get_body(("plain",)).get_content().strip() == "Zoë says hi"
    assert message.get_body(("html",)).get_content().strip() == "<p>Zoë</p>"
    assert sorted(smtp_sink.envelopes[0].rcpt_tos) == ["li@example.com", "zoe@example.com"]


def test_subject_line_breaks_cannot_add_headers(smtp_app, smtp_sink):
    """CR/LF in a subject is flattened: no injected Bcc header, no extra recipient."""
    with smtp_app.app_context():
        send_mail("ada@example.com", "Hi\r\nBcc: evil@example.com\r\n\r\nInjected body", "text")
    [message] = smtp_sink.wait_for(1)
    assert message["Bcc"] is None and "\n" not in message["Subject"]
    assert smtp_sink.envelopes[0].rcpt_tos == ["ada@example.com"]


@pytest.mark.parametrize("address", [
    "ada@example.com\r\nBcc: evil@example.com",
    "ada@example.com\nX-Evil: 1",
    "ada@example.com, eve@example.com",
    "not an address",
    "",
])
def test_unsafe_or_invalid_addresses_are_refused(smtp_app, smtp_sink, address):
    """An address with line breaks, several mailboxes or no domain raises MailDeliveryError; nothing is sent."""
    with smtp_app.app_context():
        with pytest.raises(MailDeliveryError):
            send_mail(address, "Hi", "text")
        with pytest.raises(MailDeliveryError):
            send_mail("ada@example.com", "Hi", "text", reply_to=address or "bad\r\n@x")
    assert smtp_sink.messages == []


def test_unreachable_smtp_raises_without_the_body(make_app, caplog):
    """A refused connection raises MailDeliveryError naming the server, never the message body."""
    app = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port(), SMTP_TIMEOUT=2)
    with app.app_context(), caplog.at_level(logging.DEBUG):
        with pytest.raises(MailDeliveryError) as raised:
            send_mail("ada@example.com", "Reset", f"Click {SECRET_LINK}")
    assert "127.0.0.1" in str(raised.value) and "s3cr3t" not in str(raised.value)
    assert "s3cr3t" not in caplog.text


@pytest.mark.parametrize("settings", [{"SMTP_STARTTLS": True}, {"SMTP_USERNAME": "u", "SMTP_PASSWORD": "p"}])
def test_unsupported_starttls_or_auth_is_a_delivery_error(make_app, smtp_sink, settings):
    """Asking for STARTTLS or login from a server that offers neither fails cleanly, sending nothing."""
    app = make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, **settings)
    with app.app_context(), pytest.raises(MailDeliveryError):
        send_mail("ada@example.com", "Hi", "text")
    assert smtp_sink.messages == []


def test_without_smtp_host_mail_goes_to_the_outbox(make_app, tmp_path, caplog):
    """In development (no SMTP_HOST) each mail is one .eml file in MAIL_OUTBOX_DIR; the log omits the body."""
    app = make_app(SMTP_HOST=None, MAIL_OUTBOX_DIR=str(tmp_path / "outbox"))
    with app.app_context(), caplog.at_level(logging.DEBUG):
        send_mail("ada@example.com", "Reset your password", f"Open {SECRET_LINK}\n")
    [path] = list((tmp_path / "outbox").iterdir())
    assert path.suffix == ".eml"
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["To"] == "ada@example.com" and message["Subject"] == "Reset your password"
    assert SECRET_LINK in message.get_content()
    assert "s3cr3t" not in caplog.text


def test_unwritable_outbox_is_a_delivery_error(make_app, tmp_path):
    """An outbox path that cannot be a folder raises MailDeliveryError."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    app = make_app(SMTP_HOST=None, MAIL_OUTBOX_DIR=str(blocker / "outbox"))
    with app.app_context(), pytest.raises(MailDeliveryError):
        send_mail("ada@example.com", "Hi", "text")


def test_no_recipient_is_refused(smtp_app):
    """An empty recipient list is an error, not a silent no-op."""
    with smtp_app.app_context(), pytest.raises(MailDeliveryError):
        send_mail([], "Hi", "text")
