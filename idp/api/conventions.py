"""The management API's one way of doing lists, ETags and unknown fields (changed field names for audit
rows: idp.services.audit.changed_fields).

Lists: `limit` (1..200, default 50) and an opaque `cursor`; `meta.pagination.next_cursor` is null
at the end. Writes: `If-Match` with the `ETag` a GET returned, 412 on a mismatch (RFC 9110
13.1.1). Bodies and query strings: an unknown field is a 422 naming it.

Returning an ETag from a flask-smorest view: `return with_etag(ok(...), etag)` (or with a
`(body, status)` tuple); `@blp.response(..., headers=ETAG_HEADER)` documents it, and
`@blp.doc(parameters=[IF_MATCH_PARAMETER])` with `@blp.alt_response(412, **PRECONDITION_FAILED_RESPONSE)`
documents a conditional write.
"""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone

import marshmallow as ma
from flask import current_app, has_request_context, request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import DateTime, Select
from sqlalchemy.engine import Row
from werkzeug.http import parse_etags, unquote_etag

from idp.api.envelope import ErrorEnvelopeSchema
from idp.errors import PreconditionFailed, ValidationError
from idp.extensions import db
from idp.services import keyset

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
CURSOR_MAX_LENGTH = 512
_CURSOR_SALT = "authy2.api.cursor"
BAD_CURSOR = "The cursor is not valid; start again without one."

ETAG_HEADER = {"ETag": {"description": "Strong entity tag of the resource (RFC 9110 8.8.3); send it back in "
                                       "If-Match to change or delete it only if nobody else did",
                        "schema": {"type": "string"}}}
IF_MATCH_PARAMETER = {"in": "header", "name": "If-Match", "required": False, "schema": {"type": "string"},
                      "description": "The ETag from a GET (or *): the write happens only if the resource still "
                                     "has it, else 412 PRECONDITION_FAILED (RFC 9110 13.1.1)"}
PRECONDITION_FAILED_RESPONSE = {"schema": ErrorEnvelopeSchema,
                                "description": "PRECONDITION_FAILED: If-Match does not match the current ETag "
                                               "(someone else changed the resource; GET it again)"}


class StrictSchema(ma.Schema):
    """A schema refusing unknown fields wherever it is loaded, query strings included.

    webargs excludes unknown query parameters whatever the schema says, so `load` insists on RAISE;
    the API then answers 422 VALIDATION_ERROR with `{"<field>": ["Unknown field."]}` per field.
    """

    class Meta:
        unknown = ma.RAISE

    def load(self, data, *, many=None, partial=None, unknown=None):
        return super().load(data, many=many, partial=partial, unknown=ma.RAISE)


class PageArgsSchema(StrictSchema):
    """`limit` and `cursor` of every list; use with `@blp.arguments(..., location="query")`."""

    limit = ma.fields.Integer(load_default=DEFAULT_LIMIT, validate=ma.validate.Range(min=1, max=MAX_LIMIT),
                              metadata={"description": f"Items per page, 1 to {MAX_LIMIT}"})
    cursor = ma.fields.String(validate=ma.validate.Length(min=1, max=CURSOR_MAX_LENGTH),
                              metadata={"description": "Opaque: the previous page's meta.pagination.next_cursor"})


class PaginationSchema(ma.Schema):
    next_cursor = ma.fields.String(allow_none=True, metadata={
        "description": "Pass as `cursor` for the next page; null on the last page"})
    limit = ma.fields.Integer(metadata={"description": "The page size used"})


class PageMetaSchema(ma.Schema):
    """`meta` of a paginated list."""

    pagination = ma.fields.Nested(PaginationSchema)


def page_meta(next_cursor: str | None, limit: int) -> dict:
    return {"pagination": {"next_cursor": next_cursor, "limit": limit}}


def paginate(query: Select, *, columns: tuple, limit: int, cursor: str | None) -> tuple[list, str | None]:
    """One page of `query`, newest first on `columns` (e.g. `(Model.created_at, Model.id)`, the last
    one unique), and the cursor of the next page (None at the end).

    Keyset pagination: the cursor is the last row's values, signed so a client cannot forge a
    position, so pages stay exact while rows are inserted.
    """
    if cursor is not None:
        query = query.where(keyset.after(columns, decode_cursor(cursor, columns), descending=True))
    query = query.order_by(*keyset.order_by(columns, descending=True)).limit(limit + 1)
    rows = list(_execute(query))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor([_value(rows[-1], column) for column in columns], columns)


def _execute(query: Select):
    description = query.column_descriptions
    if len(description) == 1 and description[0]["expr"] is description[0]["entity"]:
        return db.session.scalars(query)
    return db.session.execute(query)


def _value(row, column):
    if not isinstance(row, Row):
        return getattr(row, column.key)
    try:
        return row._mapping[column]
    except KeyError:  # a select of the Table (core columns): the ORM attribute is not its key
        return row._mapping[column.key]


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_CURSOR_SALT)


def encode_cursor(values: list, columns: tuple) -> str:
    """The opaque cursor after a row with these values (urlsafe base64 JSON, signed)."""
    encoded = [value.astimezone(timezone.utc).isoformat() if isinstance(value, datetime) else value
               for value in values]
    return _serializer().dumps({"l": _list_name(), "k": [column.key for column in columns], "v": encoded})


def _list_name() -> str | None:
    """The list a cursor belongs to (its endpoint): many lists page on (created_at, id), and a cursor of one
    is refused by another rather than landing on an unrelated position."""
    return request.endpoint if has_request_context() else None


def decode_cursor(cursor: str, columns: tuple) -> list:
    """The row values a cursor holds; ValidationError naming `cursor` when it was not made by
    encode_cursor for these columns."""
    try:
        payload = _serializer().loads(cursor)
        if (payload["l"] != _list_name() or payload["k"] != [column.key for column in columns]
                or len(payload["v"]) != len(columns)):
            raise ValueError("cursor of another list")
        return [_typed(column, value) for column, value in zip(columns, payload["v"])]
    except (BadSignature, KeyError, TypeError, ValueError):
        raise ValidationError("The request is not valid.", details={"cursor": [BAD_CURSOR]}) from None


def _typed(column, value):
    if isinstance(column.type, DateTime) or isinstance(getattr(column.type, "impl", None), DateTime):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive datetime in cursor")
        return parsed
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ValueError("unexpected cursor value")
    return value


def etag_for(*parts) -> str:
    """A strong ETag (RFC 9110 8.8.3), quoted, from what changes with the resource, e.g.
    `(row.id, row.updated_at)`; equal parts give equal tags on every worker."""
    text = json.dumps([part.isoformat() if isinstance(part, datetime) else part for part in parts], default=str)
    digest = hashlib.sha256(text.encode()).digest()[:18]
    return '"' + base64.urlsafe_b64encode(digest).decode().rstrip("=") + '"'


def check_if_match(current_etag: str) -> None:
    """Honour `If-Match` (RFC 9110 13.1.1): 412 unless it is `*` or lists `current_etag` (strong
    comparison, so a weak tag never matches). Absent, the write is unconditional.

    Call it after loading the row FOR UPDATE, so of two writers holding one ETag the second waits,
    then sees the first's new ETag and gets 412.
    """
    header = request.headers.get("If-Match")
    if header is None:
        return
    if header.strip() == "*":
        return
    if not parse_etags(header).contains(unquote_etag(current_etag)[0]):
        raise PreconditionFailed(headers={"ETag": current_etag})


def with_etag(result, etag: str):
    """A view's return value with the `ETag` header: `ok(...)` or `(ok(...), status)`."""
    if isinstance(result, tuple):
        body, status = result[0], (result[1] if len(result) > 1 else None)
        headers = {**(result[2] if len(result) > 2 else {}), "ETag": etag}
        return (body, status, headers) if status is not None else (body, headers)
    return result, {"ETag": etag}
