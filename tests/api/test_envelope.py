"""Every /api/* error kind answers in the seed's envelope; request ids; security headers."""
from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import func, select

from idp.api.envelope import ok
from idp.extensions import db
from idp.models import ContactEnquiry, User
from tests.api.envelope_assertions import assert_success

CONTACT = "/api/v1/contact"
REQUEST_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
GOOD = {"name": "Ada", "email": "ada@example.com", "type": "general", "message": "Hello"}
ENVELOPE_KEYS = {"version", "success", "code", "message", "request_id", "error"}
INTERNAL_TEXT = "database password hunter2 leaked at /srv/authy2/secret.py"


def assert_envelope_error(response, code: int, error_type: str) -> dict:
    body = response.get_json()
    assert response.status_code == code, body
    assert response.mimetype == "application/json" and set(body) == ENVELOPE_KEYS
    assert body["version"] == "1.0" and body["success"] is False and body["code"] == code
    assert body["error"]["type"] == error_type and isinstance(body["error"]["details"], dict)
    assert body["message"] and body["request_id"] == response.headers["X-Request-ID"]
    return body


def enquiry_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(ContactEnquiry.id)))


@pytest.fixture
def boom_app(make_app):
    """An app with test-only routes that fail in the ways a view can."""
    app = make_app()

    def explode():
        raise RuntimeError(INTERNAL_TEXT)

    def duplicate_on_flush():
        db.session.add_all([User(email="twin@example.com", name="A"), User(email="twin@example.com", name="B")])
        db.session.flush()
        return ok({})

    def duplicate_on_commit():
        db.session.add(User(email="dupe@example.com", name="Second"))
        return ok({})

    app.add_url_rule("/api/v1/test-boom", "test_boom_api", explode)
    app.add_url_rule("/test-boom", "test_boom_page", explode)
    app.add_url_rule("/api/v1/test-flush-conflict", "test_flush_conflict", duplicate_on_flush)
    app.add_url_rule("/api/v1/test-commit-conflict", "test_commit_conflict", duplicate_on_commit)
    return app


def test_unknown_api_route_is_404_envelope(client):
    """An unknown /api path answers 404 NOT_FOUND in the envelope."""
    assert_envelope_error(client.get("/api/v1/does-not-exist"), 404, "NOT_FOUND")


def test_wrong_method_is_405_envelope_with_allow(client):
    """A wrong method is 405 METHOD_NOT_ALLOWED with an Allow header listing the right ones (RFC 9110 15.5.6)."""
    response = client.get(CONTACT)
    assert_envelope_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["Allow"]


def test_oversized_body_is_413_envelope(app, client):
    """A body over MAX_CONTENT_LENGTH is 413 naming the limit; nothing is stored."""
    huge = '{"name": "' + "x" * (app.config["MAX_CONTENT_LENGTH"] + 10) + '"}'
    body = assert_envelope_error(client.post(CONTACT, data=huge, content_type="application/json"), 413,
                                 "PAYLOAD_TOO_LARGE")
    assert str(app.config["MAX_CONTENT_LENGTH"]) in body["message"]
    assert enquiry_count(app) == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_non_json_body_is_415_envelope(client, content_type):
    """A body that is not JSON is 415 UNSUPPORTED_MEDIA_TYPE, naming the type received."""
    body = assert_envelope_error(client.post(CONTACT, data="name=x", content_type=content_type), 415,
                                 "UNSUPPORTED_MEDIA_TYPE")
    assert body["error"]["details"] == {"content_type": content_type}


@pytest.mark.parametrize("raw", ['{"name": ', "{'single': 'quotes'}", "\xff\xfe", "NaN-ish"])
def test_malformed_json_is_400_envelope(client, raw):
    """Malformed JSON is 400 BAD_REQUEST with a message saying so."""
    body = assert_envelope_error(client.post(CONTACT, data=raw, content_type="application/json"), 400,
                                 "BAD_REQUEST")
    assert "not valid JSON" in body["message"]


def test_validation_is_422_with_per_field_details(client):
    """Validation failures are 422 VALIDATION_ERROR with messages per field under error.details."""
    response = client.post(CONTACT, json={"name": "", "email": "nope", "type": "other", "surprise": 1})
    details = assert_envelope_error(response, 422, "VALIDATION_ERROR")["error"]["details"]
    assert set(details) == {"name", "email", "type", "message", "surprise"}
    assert all(isinstance(messages, list) and messages for messages in details.values())


@pytest.mark.parametrize("payload", [[], [GOOD], "text", 42, None])
def test_non_object_json_is_422(client, payload):
    """JSON that is not an object is refused as invalid input, not a crash."""
    assert_envelope_error(client.post(CONTACT, json=payload), 422, "VALIDATION_ERROR")


def test_rate_limit_is_429_envelope_with_retry_after(make_app):
    """Past the limit: 429 RATE_LIMITED with Retry-After (RFC 6585 section 4)."""
    client = make_app(RATELIMIT_CONTACT="1 per hour").test_client()
    client.post(CONTACT, json=GOOD)
    response = client.post(CONTACT, json=GOOD)
    assert_envelope_error(response, 429, "RATE_LIMITED")
    assert 0 < int(response.headers["Retry-After"]) <= 3600


def test_unhandled_error_is_500_without_internals_and_logged_with_request_id(boom_app, caplog):
    """A crash is a generic 500 envelope; the cause is logged with the request id, never sent."""
    with caplog.at_level(logging.ERROR):
        response = boom_app.test_client().get("/api/v1/test-boom")
    body = assert_envelope_error(response, 500, "INTERNAL_ERROR")
    text = response.get_data(as_text=True)
    assert "hunter2" not in text and "RuntimeError" not in text and "Traceback" not in text
    assert body["error"]["details"] == {}
    assert body["request_id"] in caplog.text and "hunter2" in caplog.text


def test_unhandled_error_on_a_page_is_an_html_500_without_internals(boom_app):
    """Outside /api a crash renders the HTML error page with the reference, not the envelope."""
    response = boom_app.test_client().get("/test-boom")
    text = response.get_data(as_text=True)
    assert response.status_code == 500 and response.mimetype == "text/html"
    assert "hunter2" not in text and "Traceback" not in text
    assert response.headers["X-Request-ID"] in text


def test_uniqueness_clash_at_flush_is_409_and_rolled_back(boom_app):
    """An integrity error raised inside a view is a 409 CONFLICT, and nothing is written."""
    assert_envelope_error(boom_app.test_client().get("/api/v1/test-flush-conflict"), 409, "CONFLICT")
    with boom_app.app_context():
        assert db.session.scalar(select(func.count(User.id))) == 0


def test_uniqueness_clash_at_commit_is_409_with_headers(boom_app, factories):
    """A clash found only at commit still answers 409 with the request id and security headers."""
    factories.user(email="dupe@example.com")
    response = boom_app.test_client().get("/api/v1/test-commit-conflict", headers={"X-Request-ID": REQUEST_ID})
    body = assert_envelope_error(response, 409, "CONFLICT")
    assert body["request_id"] == REQUEST_ID
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


# success envelopes ------------------------------------------------------------------------------

def test_success_without_meta_carries_an_empty_meta(client, factories):
    """A success answer with nothing to say in meta still carries `"meta": {}` (the seed's envelope)."""
    factories.user(email="meta@example.com", password="Meta-Pass-123!")
    login = client.post("/api/v1/auth/login", json={"email": "meta@example.com", "password": "Meta-Pass-123!"})
    assert assert_success(login)["meta"] == {}
    assert assert_success(client.get("/api/health"))["meta"] == {}


def test_success_with_meta_keeps_its_members(client, factories):
    """A list answer keeps its documented meta (count)."""
    factories.user(email="meta@example.com", password="Meta-Pass-123!")
    token = client.post("/api/v1/auth/login", json={"email": "meta@example.com", "password": "Meta-Pass-123!"}
                        ).get_json()["data"]["token"]
    sessions = client.get("/api/v1/auth/sessions", headers={"Authorization": f"Bearer {token}"})
    assert assert_success(sessions)["meta"] == {"count": 1}


def test_every_success_envelope_documents_meta(client):
    """Every success envelope schema in the OpenAPI document has a `meta` property."""
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    envelopes = {name: schema for name, schema in schemas.items()
                 if name.endswith("Envelope") and name != "ErrorEnvelope"}
    assert envelopes and all("meta" in schema["properties"] for schema in envelopes.values())


# request ids ------------------------------------------------------------------------------------

@pytest.mark.parametrize("incoming", [REQUEST_ID, str(uuid.uuid4()), str(uuid.uuid1())])
def test_uuid_request_id_is_kept(client, incoming):
    """An X-Request-ID that is a UUID is reused in the body and echoed in the header."""
    response = client.get("/api/health", headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] == incoming == response.get_json()["request_id"]


def test_upper_case_uuid_request_id_is_lower_cased(client):
    """A UUID in upper case is the same id: it comes back in its canonical lower-case form."""
    response = client.get("/api/health", headers={"X-Request-ID": REQUEST_ID.upper()})
    assert response.headers["X-Request-ID"] == REQUEST_ID == response.get_json()["request_id"]


@pytest.mark.parametrize("incoming", [f"{REQUEST_ID}-extra", f"x{REQUEST_ID}", "abc-123",
                                      REQUEST_ID.replace("-", ""), "{" + REQUEST_ID + "}",
                                      "urn:uuid:" + REQUEST_ID, "a" * 65, "has space",
                                      "<script>alert(1)</script>", "semi;colon", "ünï", ""])
def test_request_id_that_is_not_a_uuid_is_replaced(client, incoming):
    """Any X-Request-ID that is not a canonical UUID (even one with a UUID inside) is replaced by a uuid4."""
    response = client.get("/api/v1/nope", headers={"X-Request-ID": incoming})
    issued = response.headers["X-Request-ID"]
    assert issued != incoming and uuid.UUID(issued).version == 4
    assert response.get_json()["request_id"] == issued


def test_each_request_gets_its_own_id(client):
    """Without an incoming id, every request gets a different uuid4."""
    ids = {client.get("/api/health").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3 and all(uuid.UUID(value).version == 4 for value in ids)


# security headers -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/health", "/api/v1/nope", "/api/docs", "/api/openapi.json", "/no-such-page"])
def test_security_headers_on_api_and_html_responses(client, path):
    """CSP with frame-ancestors 'none', nosniff, DENY framing and a strict Referrer-Policy everywhere."""
    headers = client.get(path).headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] in ("no-referrer", "same-origin")


def test_hsts_is_sent_when_the_issuer_is_https(make_app):
    """Under an https ISSUER responses carry Strict-Transport-Security (RFC 6797)."""
    response = make_app(ISSUER="https://idp.example").test_client().get("/api/health")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_pages_outside_api_are_html_not_envelope(client):
    """A 404 outside /api is the HTML page, never the JSON envelope."""
    response = client.get("/no-such-page")
    assert response.status_code == 404 and response.mimetype == "text/html"


@pytest.mark.parametrize("path, body", [
    ("/api/v1/auth/login", {"email": "bob@example.com", "password": "pass\ud800word"}),
    ("/api/v1/auth/register", {"email": "new@example.com", "password": "Long-Enough-\udfff", "name": "N"}),
    (CONTACT, {**GOOD, "message": "hello \ud83d"}),
    (CONTACT, {**GOOD, "\ud800": "key"}),
])
def test_unpaired_surrogates_in_json_are_a_400_envelope(app, client, path, body):
    """A JSON string with an unpaired surrogate (not encodable as UTF-8, RFC 8259 8.2) is 400, never a 500."""
    response = client.post(path, json=body)
    assert_envelope_error(response, 400, "BAD_REQUEST")
    assert enquiry_count(app) == 0


@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/organizations/%00"),
    ("delete", "/api/v1/auth/sessions/abc%00"),
    ("delete", "/api/v1/organizations/x/members/%0A"),
])
def test_control_characters_in_path_ids_are_a_404_envelope(client, factories, auth_headers, method, path):
    """An id with NUL or a line break in the path is 404 in the envelope (PostgreSQL refuses NUL: no 500)."""
    headers = auth_headers(factories.user())
    assert_envelope_error(getattr(client, method)(path, headers=headers), 404, "NOT_FOUND")


@pytest.mark.parametrize("path", ["/api/health", "/api/v1/users/me", "/api/v1/auth/me"])
def test_api_answers_are_never_stored_by_caches(client, factories, auth_headers, path):
    """API bodies carry tokens and personal data: Cache-Control no-store, errors included (RFC 9111 5.2.2.5)."""
    headers = auth_headers(factories.user())
    assert client.get(path, headers=headers).headers["Cache-Control"] == "no-store"
    assert client.get(path).headers["Cache-Control"] == "no-store"
