"""Per-request plumbing: the one commit per request (skipped only when nothing can need it) and the
session-cookie serializer reused across requests."""
from __future__ import annotations

import pytest
from flask import session as flask_session
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session as OrmSession

from idp.extensions import db
from idp.models import ContactEnquiry as Contact
from idp.requests import SessionCookieInterface


@pytest.fixture
def plumbed(make_app):
    """An app with test routes that write in each way a service may, or not at all."""
    app = make_app()

    @app.post("/_t/core-insert")
    def core_insert():
        db.session.execute(Contact.__table__.insert(), {"name": "Core", "email": "core@example.com",
                                                          "message": "core insert", "type": "general"})
        return "ok"

    @app.post("/_t/orm-add")
    def orm_add():
        db.session.add(Contact(name="Orm", email="orm@example.com", message="orm add", type="general"))
        return "ok"

    @app.get("/_t/nothing")
    def nothing():
        return "ok"

    @app.get("/_t/cookie")
    def cookie():
        flask_session["seen"] = flask_session.get("seen", 0) + 1
        return str(flask_session["seen"])

    for view in (core_insert, orm_add):
        app.extensions["csrf"].exempt(view)
    return app


def _commits(app) -> list:
    seen = []
    with app.app_context():
        event.listen(db.session, "after_commit", lambda s: seen.append(s))
    return seen


def _contacts(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Contact))


def test_core_statement_without_orm_objects_is_committed(plumbed):
    """A write made only with a Core statement (nothing in the unit of work) still commits."""
    assert plumbed.test_client().post("/_t/core-insert").status_code == 200
    assert _contacts(plumbed) == 1


def test_orm_object_added_but_not_flushed_is_committed(plumbed):
    """A pending ORM object (never flushed during the request) is flushed and committed."""
    assert plumbed.test_client().post("/_t/orm-add").status_code == 200
    assert _contacts(plumbed) == 1


def test_request_without_database_work_skips_the_commit(plumbed):
    """A request that ran no statement and holds no object does not commit; one that wrote does."""
    commits = _commits(plumbed)
    client = plumbed.test_client()
    assert client.get("/_t/nothing").status_code == 200
    assert commits == []
    client.post("/_t/core-insert")
    assert len(commits) == 1


def _lost_at_commit(session):
    raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"),
                           connection_invalidated=True)


@pytest.fixture
def commit_lost():
    event.listen(OrmSession, "before_commit", _lost_at_commit)
    yield
    event.remove(OrmSession, "before_commit", _lost_at_commit)


def test_commit_lost_on_a_page_is_an_html_503(plumbed, commit_lost):
    """A page whose commit loses the connection answers the HTML 503 page with Retry-After and the
    security headers (RFC 9110 15.6.4), and writes nothing."""
    response = plumbed.test_client().post("/_t/core-insert")
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert response.headers["Retry-After"] == "1" and "frame-ancestors" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Request-ID"] in response.get_data(as_text=True)
    assert _contacts(plumbed) == 0


def test_session_cookie_round_trips_with_reused_serializer(plumbed):
    """Flask's signed session cookie still verifies across requests (the CSRF token lives in it)."""
    client = plumbed.test_client()
    assert [client.get("/_t/cookie").text for _ in range(3)] == ["1", "2", "3"]


def test_session_serializer_is_rebuilt_when_the_secret_key_changes(plumbed):
    """The cached serializer follows SECRET_KEY: a cookie signed with an old key is not trusted."""
    interface = plumbed.session_interface
    assert isinstance(interface, SessionCookieInterface)
    first = interface.get_signing_serializer(plumbed)
    assert interface.get_signing_serializer(plumbed) is first
    old_cookie = first.dumps({"seen": 41})
    plumbed.secret_key = "another-secret-key-for-this-test-only-0123456789"
    second = interface.get_signing_serializer(plumbed)
    assert second is not first
    with pytest.raises(Exception):
        second.loads(old_cookie)


# JSON bodies: bounded depth and number length on every reader ---------------------------------

DEEP_ARRAY = "[" * 50_000 + "]" * 50_000
DEEP_IN_OBJECT = '{"email": "ada@example.com", "password": ' + "[" * 50_000 + "]" * 50_000 + "}"
LONG_INTEGER = '{"email": "ada@example.com", "password": ' + "7" * 5_000 + ', "name": "Ada"}'
REFUSED_BODIES = {
    "50,000-deep array": (DEEP_ARRAY, "it nests deeper than 64 levels"),
    "50,000-deep member": (DEEP_IN_OBJECT, "it nests deeper than 64 levels"),
    "5,000-digit integer": (LONG_INTEGER, "a number has more than 100 characters"),
    "5,000-digit email": ('{"email": ' + "1" * 5_000 + ', "password": "x"}', "a number has more than 100 characters"),
    "overflowing float": ('{"email": 1e400, "password": "x"}', "a number is out of range"),
    "NaN": ('{"email": NaN, "password": "x"}', "NaN is not a JSON value (RFC 8259 section 6)"),
}


def _nested(depth: int) -> str:
    return '{"email": "ada@example.com", "password": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/auth/register"])
@pytest.mark.parametrize("raw, reason", REFUSED_BODIES.values(), ids=REFUSED_BODIES.keys())
def test_unacceptable_json_on_the_api_is_a_400_envelope(client, path, raw, reason):
    """RFC 8259 9 lets a parser limit nesting and number size: past ours the API answers 400 BAD_REQUEST
    in the envelope, saying why, never a 500."""
    response = client.post(path, data=raw, content_type="application/json")
    body = response.get_json()
    assert response.status_code == 400, body
    assert body["success"] is False and body["error"]["type"] == "BAD_REQUEST"
    assert body["message"] == f"The request body is not valid JSON: {reason}."
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_json_nested_to_the_limit_reaches_validation(client):
    """64 levels are parsed and validated (422 on the field); 65 are refused as JSON (400)."""
    at_limit = client.post("/api/v1/auth/login", data=_nested(64), content_type="application/json")
    assert at_limit.status_code == 422 and "password" in at_limit.get_json()["error"]["details"]
    past_limit = client.post("/api/v1/auth/login", data=_nested(65), content_type="application/json")
    assert past_limit.status_code == 400 and past_limit.get_json()["error"]["type"] == "BAD_REQUEST"


@pytest.fixture
def initial_token(app):
    return app.test_cli_runner().invoke(args=["clients", "initial-token"]).output.strip()


@pytest.mark.parametrize("raw, reason", [REFUSED_BODIES["50,000-deep array"], REFUSED_BODIES["5,000-digit integer"]],
                         ids=["50,000-deep", "5,000-digit"])
def test_unacceptable_json_on_dynamic_registration_is_invalid_request(client, initial_token, raw, reason):
    """RFC 7591 3 takes a JSON body: past the limits it is a 400 invalid_request (RFC 6749 5.2), not a 500."""
    response = client.post("/oauth2/register", data=raw, content_type="application/json",
                           headers={"Authorization": f"Bearer {initial_token}"})
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_request",
                                   "error_description": f"The request body is not valid JSON: {reason}."}
