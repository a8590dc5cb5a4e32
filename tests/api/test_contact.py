"""POST /api/v1/contact: stored, mailed to CONTACT_EMAIL, kept PENDING while mail is down, rate limited."""
from __future__ import annotations

import socket
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.jobs import run_job
from idp.models import AuditEvent, ContactEnquiry
from tests.api.envelope_assertions import assert_error

CONTACT = "/api/v1/contact"
GOOD = {"name": "Ada Lovelace", "email": "ada@example.com", "type": "demo",
        "message": "We would like a demo.\nThursday works.", "company": "Analytical Engines Ltd"}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def enquiries(app) -> list[ContactEnquiry]:
    with app.app_context():
        return list(db.session.scalars(select(ContactEnquiry).order_by(ContactEnquiry.created_at)))


def enquiry_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(ContactEnquiry.id)))


def outbox_files(app) -> set[str]:
    outbox = Path(app.config["MAIL_OUTBOX_DIR"])
    return {path.name for path in outbox.glob("*.eml")} if outbox.exists() else set()



def parsed(message):
    return message_from_bytes(message.as_bytes(), policy=policy.default)


@pytest.fixture
def smtp_app(make_app, smtp_sink):
    return make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, CONTACT_EMAIL="team@authy2.test")


def test_enquiry_is_stored_and_mailed_to_contact_email(smtp_app, smtp_sink):
    """201 in the envelope; the team gets one mail at CONTACT_EMAIL with the details; the row is SENT."""
    response = smtp_app.test_client().post(CONTACT, json=GOOD)
    body = response.get_json()
    assert response.status_code == 201 and body["success"] is True and body["code"] == 201
    assert body["data"]["type"] == "demo" and body["data"]["id"]
    [message] = smtp_sink.wait_for(1)
    assert smtp_sink.envelopes[0].rcpt_tos == ["team@authy2.test"] and message["To"] == "team@authy2.test"
    assert message["Subject"] == "[Authy2] Demo request from Ada Lovelace"
    assert message["Reply-To"] == "ada@example.com"
    text = parsed(message).get_content()
    assert "We would like a demo.\nThursday works." in text and "Analytical Engines Ltd" in text
    assert body["data"]["id"] in text
    [enquiry] = enquiries(smtp_app)
    assert enquiry.status == "SENT" and enquiry.attempts == 1 and enquiry.sent_at is not None
    assert enquiry.id == body["data"]["id"] and enquiry.company == "Analytical Engines Ltd"


def test_enquiry_is_audited_without_personal_text(smtp_app, smtp_sink):
    """The audit row names the action and type, not the message or email."""
    smtp_app.test_client().post(CONTACT, json=GOOD)
    with smtp_app.app_context():
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "contact.submit")).all()
    assert event.outcome == "success" and event.target_type == "contact_enquiry"
    assert event.details == {"type": "demo"} and event.ip_address


def test_smtp_down_keeps_enquiry_pending_then_the_job_sends_it(make_app, smtp_sink):
    """Mail down: still 201, row PENDING with the cause; once SMTP is back the job mails it, once."""
    down = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port(), SMTP_TIMEOUT=2, CONTACT_EMAIL="team@authy2.test")
    response = down.test_client().post(CONTACT, json=GOOD)
    assert response.status_code == 201
    [enquiry] = enquiries(down)
    assert enquiry.status == "PENDING" and enquiry.attempts == 1 and "failed" in enquiry.last_error

    back = make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, CONTACT_EMAIL="team@authy2.test")
    with back.app_context():
        assert run_job("send_pending_mail") == ["send_pending_mail: sent 1 enquiry mail(s)"]
        assert run_job("send_pending_mail") == ["send_pending_mail: sent 0 enquiry mail(s)"]
    [message] = smtp_sink.wait_for(1)
    assert message["To"] == "team@authy2.test" and "Ada Lovelace" in message["Subject"]
    [enquiry] = enquiries(back)
    assert enquiry.status == "SENT" and enquiry.attempts == 2 and enquiry.last_error is None
    assert len(smtp_sink.messages) == 1


def test_without_smtp_host_the_enquiry_lands_in_the_outbox(make_app, tmp_path):
    """In development the mail is written to MAIL_OUTBOX_DIR and the enquiry counts as sent."""
    app = make_app(SMTP_HOST=None, MAIL_OUTBOX_DIR=str(tmp_path))
    assert app.test_client().post(CONTACT, json=GOOD).status_code == 201
    [path] = list(tmp_path.glob("*.eml"))
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["To"] == app.config["CONTACT_EMAIL"] == "info@secuird.tech"
    assert enquiries(app)[0].status == "SENT"


@pytest.mark.parametrize("kind, label", [("sales", "Sales enquiry"), ("general", "General enquiry"),
                                         ("support", "Support request")])
def test_each_enquiry_type_is_labelled_in_the_subject(smtp_app, smtp_sink, kind, label):
    """The subject says what kind of enquiry it is."""
    smtp_app.test_client().post(CONTACT, json={**GOOD, "type": kind})
    [message] = smtp_sink.wait_for(1)
    assert message["Subject"] == f"[Authy2] {label} from Ada Lovelace"


def test_company_is_optional(smtp_app, smtp_sink):
    """Without company (or with null) the enquiry is accepted."""
    client = smtp_app.test_client()
    without = {key: value for key, value in GOOD.items() if key != "company"}
    assert client.post(CONTACT, json=without).status_code == 201
    assert client.post(CONTACT, json={**without, "company": None}).status_code == 201
    assert [e.company for e in enquiries(smtp_app)] == [None, None]


@pytest.mark.parametrize("name, message", [
    ("Zoë 李雷", "Grüße — 你好 👋"),
    ("Robert'); DROP TABLE contact_enquiries;--", "1 OR 1=1; DELETE FROM users; --"),
])
def test_unicode_and_sql_looking_text_is_kept_verbatim(smtp_app, smtp_sink, name, message):
    """Unicode and SQL-looking input is stored and mailed exactly as written."""
    response = smtp_app.test_client().post(CONTACT, json={**GOOD, "name": name, "message": message})
    assert response.status_code == 201
    [stored] = enquiries(smtp_app)
    assert stored.name == name and stored.message == message
    [mail] = smtp_sink.wait_for(1)
    assert message in parsed(mail).get_content() and name in str(parsed(mail)["Subject"])


@pytest.mark.parametrize("payload, field", [
    ({**GOOD, "name": "Eve\r\nBcc: victim@example.com"}, "name"),
    ({**GOOD, "name": "Eve\nX-Spam: yes"}, "name"),
    ({**GOOD, "email": "eve@example.com\r\nBcc: victim@example.com"}, "email"),
    ({**GOOD, "company": "Evil\r\nCc: victim@example.com"}, "company"),
    ({**GOOD, "name": "x" * 201}, "name"),
    ({**GOOD, "company": "c" * 201}, "company"),
    ({**GOOD, "message": "m" * 5001}, "message"),
    ({**GOOD, "email": ("a" * 250) + "@example.com"}, "email"),
    ({**GOOD, "email": "not-an-email"}, "email"),
    ({**GOOD, "type": "partnership"}, "type"),
    ({**GOOD, "message": "   "}, "message"),
    ({**GOOD, "message": "nul\x00byte"}, "message"),
    ({**GOOD, "name": ""}, "name"),
    ({**GOOD, "name": ["Ada"]}, "name"),
    ({**GOOD, "status": "SENT"}, "status"),
    ({key: value for key, value in GOOD.items() if key != "email"}, "email"),
])
def test_bad_input_is_422_and_nothing_is_stored_or_sent(app, client, payload, field):
    """Overlong fields, header-injection attempts, bad types and unknown fields: 422, no row, no mail."""
    before = outbox_files(app)
    body = assert_error(client.post(CONTACT, json=payload), 422, "VALIDATION_ERROR")
    assert field in body["error"]["details"]
    assert enquiry_count(app) == 0 and outbox_files(app) == before


def test_malformed_json_and_wrong_content_type(client, app):
    """Malformed JSON is a 400, a form post a 415, both in the envelope, nothing stored."""
    bad_json = client.post(CONTACT, data="{not json", content_type="application/json")
    assert "JSON" in assert_error(bad_json, 400, "BAD_REQUEST")["message"]
    assert_error(client.post(CONTACT, data={"name": "x"}), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert enquiry_count(app) == 0


def test_rate_limit_is_five_per_ip_per_hour(client, app):
    """The sixth enquiry from one address within the hour is a 429 in the envelope with Retry-After."""
    for _ in range(5):
        assert client.post(CONTACT, json=GOOD).status_code == 201
    response = client.post(CONTACT, json=GOOD)
    body = assert_error(response, 429, "RATE_LIMITED")
    assert int(response.headers["Retry-After"]) > 0 and body["request_id"] == response.headers["X-Request-ID"]
    assert enquiry_count(app) == 5


def test_forged_forwarded_for_does_not_escape_the_limit(make_app):
    """Without trusted proxies, a client cannot reset its limit by sending X-Forwarded-For."""
    client = make_app(RATELIMIT_CONTACT="1 per hour").test_client()
    assert client.post(CONTACT, json=GOOD, headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 201
    assert client.post(CONTACT, json=GOOD, headers={"X-Forwarded-For": "10.0.0.2"}).status_code == 429


def test_limit_is_per_client_address(make_app):
    """Another client address has its own allowance."""
    client = make_app(RATELIMIT_CONTACT="1 per hour").test_client()
    assert client.post(CONTACT, json=GOOD, environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 201
    assert client.post(CONTACT, json=GOOD, environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 429
    assert client.post(CONTACT, json=GOOD, environ_base={"REMOTE_ADDR": "192.0.2.2"}).status_code == 201
