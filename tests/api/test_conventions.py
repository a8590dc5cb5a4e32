"""The management API's conventions (idp.api.conventions): cursor pages, ETags and If-Match,
unknown fields, change lists."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import marshmallow as ma
import pytest
from flask import Flask
from flask_smorest import Api, Blueprint
from sqlalchemy import insert, select

from idp.api.conventions import (
    PageArgsSchema, PageMetaSchema, StrictSchema, check_if_match, decode_cursor, encode_cursor,
    etag_for, page_meta, paginate, with_etag,
)
from idp.errors import PreconditionFailed, ValidationError
from idp.extensions import db
from idp.models import AuditEvent
from idp.models.base import new_id
from idp.services.audit import changed_fields

COLUMNS = (AuditEvent.created_at, AuditEvent.id)
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def insert_events(count: int, *, same_instant: bool = False) -> list[str]:
    """Audit rows created one second apart (or all at T0), returned newest first."""
    rows = [{"id": new_id(), "created_at": T0 if same_instant else T0 + timedelta(seconds=i),
             "action": "test.event", "outcome": "success"} for i in range(count)]
    db.session.execute(insert(AuditEvent.__table__), rows)
    db.session.commit()
    return [row["id"] for row in sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)]


def walk(limit: int) -> tuple[list[str], list[str | None]]:
    seen, cursors, cursor = [], [], None
    while True:
        rows, cursor = paginate(select(AuditEvent), columns=COLUMNS, limit=limit, cursor=cursor)
        seen += [row.id for row in rows]
        cursors.append(cursor)
        if cursor is None:
            return seen, cursors


@pytest.mark.parametrize("same_instant", [False, True])
def test_pages_return_every_row_once_newest_first(ctx, same_instant):
    """Walking the pages yields each row exactly once in (created_at, id) DESC order, even when
    every row has the same timestamp (the id breaks ties)."""
    expected = insert_events(23, same_instant=same_instant)
    with ctx.test_request_context():
        seen, cursors = walk(limit=5)
    assert seen == expected
    assert cursors[-1] is None and all(cursors[:-1]) and len(cursors) == 5


def test_exact_multiple_ends_with_a_null_cursor(ctx):
    """When the last page is full, it still says there is no next one (no empty extra page)."""
    insert_events(10)
    with ctx.test_request_context():
        rows, cursor = paginate(select(AuditEvent), columns=COLUMNS, limit=10, cursor=None)
    assert len(rows) == 10 and cursor is None


def test_rows_inserted_while_walking_do_not_disturb_the_walk(ctx):
    """Newer rows written between pages are not part of the walk, and no original row is lost or repeated."""
    expected = insert_events(12)
    with ctx.test_request_context():
        first, cursor = paginate(select(AuditEvent), columns=COLUMNS, limit=4, cursor=None)
        db.session.execute(insert(AuditEvent.__table__), [
            {"id": new_id(), "created_at": T0 + timedelta(days=1), "action": "test.new", "outcome": "success"}])
        db.session.commit()
        seen = [row.id for row in first]
        while cursor:
            rows, cursor = paginate(select(AuditEvent), columns=COLUMNS, limit=4, cursor=cursor)
            seen += [row.id for row in rows]
    assert seen == expected


def test_pagination_of_a_filtered_column_select(ctx):
    """paginate accepts a select of columns (rows, not entities) and keeps the query's filters."""
    insert_events(6)
    with ctx.test_request_context():
        query = select(AuditEvent.id, AuditEvent.created_at).where(AuditEvent.action == "test.event")
        rows, cursor = paginate(query, columns=COLUMNS, limit=4, cursor=None)
        more, end = paginate(query, columns=COLUMNS, limit=4, cursor=cursor)
    assert len(rows) == 4 and len(more) == 2 and end is None
    with ctx.test_request_context():
        table_rows, cursor = paginate(select(AuditEvent.__table__), columns=COLUMNS, limit=4, cursor=None)
        table_more, _ = paginate(select(AuditEvent.__table__), columns=COLUMNS, limit=4, cursor=cursor)
    assert [row.id for row in table_rows + table_more] == [row.id for row in rows + more]


@pytest.mark.parametrize("tamper", [
    lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),   # signature changed
    lambda c: "x" + c,                                                 # payload changed
    lambda c: "not-a-cursor",
    lambda c: "",
])
def test_tampered_cursor_is_a_validation_error_naming_cursor(ctx, tamper):
    """A cursor the server did not make is refused with VALIDATION_ERROR on `cursor`, never a 500."""
    insert_events(3)
    with ctx.test_request_context():
        _, cursor = paginate(select(AuditEvent), columns=COLUMNS, limit=1, cursor=None)
        with pytest.raises(ValidationError) as raised:
            paginate(select(AuditEvent), columns=COLUMNS, limit=1, cursor=tamper(cursor))
    assert list(raised.value.details) == ["cursor"]


def test_cursor_of_another_list_is_refused(ctx):
    """A cursor made for other columns is not silently reinterpreted."""
    with ctx.test_request_context():
        cursor = encode_cursor(["a"], (AuditEvent.id,))
        with pytest.raises(ValidationError):
            decode_cursor(cursor, COLUMNS)
        assert decode_cursor(encode_cursor([T0, "x"], COLUMNS), COLUMNS) == [T0, "x"]


def test_cursor_signed_with_another_secret_is_refused(ctx, make_app):
    """Cursors are bound to this deployment's SECRET_KEY."""
    other = make_app(SECRET_KEY="another-secret-key-of-enough-length-0123456789")
    with other.test_request_context():
        foreign = encode_cursor([T0, "x"], COLUMNS)
    with ctx.test_request_context(), pytest.raises(ValidationError):
        decode_cursor(foreign, COLUMNS)


@pytest.mark.parametrize("query, field", [({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"),
                                          ({"limit": "ten"}, "limit"), ({"cursor": "c" * 513}, "cursor"),
                                          ({"frobnicate": "1"}, "frobnicate")])
def test_page_args_bounds(query, field):
    """limit is 1..200 and the cursor bounded; an unknown parameter is named."""
    with pytest.raises(ma.ValidationError) as raised:
        PageArgsSchema().load(query)
    assert list(raised.value.messages) == [field]


def test_page_args_defaults():
    assert PageArgsSchema().load({}) == {"limit": 50}
    assert PageArgsSchema().load({"limit": "200", "cursor": "abc"}) == {"limit": 200, "cursor": "abc"}


def test_page_meta_shape():
    """meta.pagination carries next_cursor (null at the end) and limit."""
    meta = page_meta(None, 50)
    assert meta == {"pagination": {"next_cursor": None, "limit": 50}}
    assert PageMetaSchema().dump(meta) == meta


class Widget(StrictSchema):
    name = ma.fields.String()


def test_strict_schema_names_each_unknown_field_even_when_told_to_exclude():
    """Unknown fields are refused by name, whatever `unknown` a caller (webargs) passes."""
    with pytest.raises(ma.ValidationError) as raised:
        Widget().load({"name": "x", "frobnicate": 1, "colour": "red"}, unknown=ma.EXCLUDE)
    assert raised.value.messages == {"frobnicate": ["Unknown field."], "colour": ["Unknown field."]}


def test_etag_is_strong_quoted_and_changes_with_its_parts():
    """RFC 9110 8.8.3: a strong entity tag is a quoted opaque string, no W/ prefix."""
    tag = etag_for("id-1", T0)
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
    assert tag == etag_for("id-1", T0)
    assert tag != etag_for("id-1", T0 + timedelta(microseconds=1)) and tag != etag_for("id-2", T0)


@pytest.mark.parametrize("if_match, passes", [
    (None, True), ("*", True), ("CURRENT", True), ('"other", CURRENT', True),
    ('"other"', False), ("W/CURRENT", False), ("garbage", False),
])
def test_if_match(app, if_match, passes):
    """RFC 9110 13.1.1: If-Match passes for `*` or a strong match in its list; else 412."""
    current = etag_for("row", 1)
    headers = {} if if_match is None else {"If-Match": if_match.replace("CURRENT", current)}
    with app.test_request_context(headers=headers):
        if passes:
            check_if_match(current)
        else:
            with pytest.raises(PreconditionFailed) as raised:
                check_if_match(current)
            assert raised.value.code == 412 and raised.value.type == "PRECONDITION_FAILED"


def test_changed_fields_names_only_what_differs():
    before = {"name": "a", "disabled": False, "secret_hash": "h1"}
    after = {"name": "b", "disabled": False, "secret_hash": "h2", "logo_uri": None}
    assert changed_fields(before, after) == ["name", "secret_hash"]
    assert changed_fields(after, after) == []


def test_with_etag_sets_the_header_through_flask_smorest():
    """A `@blp.response` view returning with_etag(...) answers with the ETag header and its status."""
    app = Flask("etag-check")
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    api = Api(app)
    blp = Blueprint("w", __name__)

    @blp.route("/plain")
    @blp.response(200)
    def plain():
        return with_etag({"a": 1}, '"abc"')

    @blp.route("/created")
    @blp.response(201)
    def created():
        return with_etag(({"a": 2}, 201), '"def"')

    api.register_blueprint(blp)
    client = app.test_client()
    first, second = client.get("/plain"), client.get("/created")
    assert (first.status_code, first.headers["ETag"], first.get_json()) == (200, '"abc"', {"a": 1})
    assert (second.status_code, second.headers["ETag"], second.get_json()) == (201, '"def"', {"a": 2})
