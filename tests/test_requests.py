"""Per-request plumbing: the one commit per request (skipped only when nothing can need it) and the
session-cookie serializer reused across requests."""
from __future__ import annotations

import pytest
from flask import session as flask_session
from sqlalchemy import event, func, select

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
