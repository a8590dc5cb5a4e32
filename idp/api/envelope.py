"""The seed's response envelope, for success and error bodies, and its OpenAPI schemas."""
from __future__ import annotations

from functools import lru_cache

import marshmallow as ma
from flask import jsonify

from idp.errors import AppError
from idp.request_id import current_request_id

ENVELOPE_VERSION = "1.0"


def ok(data=None, message: str = "Success", code: int = 200, meta: dict | None = None) -> dict:
    """A success body, `meta` always present (`{}` when empty); pair it with a view's
    `@blp.response(code, envelope_of(Schema))`."""
    return {"version": ENVELOPE_VERSION, "success": True, "code": code, "message": message,
            "request_id": current_request_id(), "data": data if data is not None else {},
            "meta": meta if meta is not None else {}}


def error_response(code: int, message: str, error_type: str, details: dict | None = None, headers: dict | None = None):
    """An error body in the envelope, as a Flask response."""
    body = {"version": ENVELOPE_VERSION, "success": False, "code": code, "message": message,
            "request_id": current_request_id(), "error": {"type": error_type, "details": details or {}}}
    response = jsonify(body)
    response.status_code = code
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def render_api_error(error: AppError):
    """Any AppError on /api/* as the envelope (registered for the API's paths in setup_api)."""
    return error_response(error.code, error.message, error.type, error.details, error.headers)


class ErrorDetailSchema(ma.Schema):
    type = ma.fields.String(metadata={"description": "Error kind, e.g. VALIDATION_ERROR, NOT_FOUND"})
    details = ma.fields.Dict(metadata={"description": "Per-field messages for validation errors"})


class ErrorEnvelopeSchema(ma.Schema):
    version = ma.fields.String()
    success = ma.fields.Boolean()
    code = ma.fields.Integer()
    message = ma.fields.String()
    request_id = ma.fields.String()
    error = ma.fields.Nested(ErrorDetailSchema)


class EmptySchema(ma.Schema):
    pass


class ListMetaSchema(ma.Schema):
    """`meta` of a list response."""

    count = ma.fields.Integer(metadata={"description": "Number of items in data"})


def envelope_of(data_schema: type[ma.Schema] | None = None, *, many: bool = False, meta: type[ma.Schema] | None = None):
    """The envelope schema class wrapping `data_schema` (a list of it with `many`); one class per shape."""
    return _envelope_class(data_schema or EmptySchema, many, meta)


@lru_cache(maxsize=None)
def _envelope_class(inner: type[ma.Schema], many: bool, meta: type[ma.Schema] | None):
    name = f"{inner.__name__.removesuffix('Schema')}{'List' if many else ''}Envelope"
    fields = {
        "version": ma.fields.String(),
        "success": ma.fields.Boolean(),
        "code": ma.fields.Integer(),
        "message": ma.fields.String(),
        "request_id": ma.fields.String(),
        "data": ma.fields.List(ma.fields.Nested(inner)) if many else ma.fields.Nested(inner),
        "meta": ma.fields.Nested(meta or EmptySchema, metadata={"description": "Empty ({}) unless the operation "
                                                                              "documents its members"}),
    }
    return type(name, (ma.Schema,), {**fields, "Meta": type("Meta", (), {"ordered": True})})
