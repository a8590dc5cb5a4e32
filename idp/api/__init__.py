"""REST API v1 on flask-smorest, speaking the seed's envelope on every /api/* response."""
from __future__ import annotations

import http

from flask import Flask, request
from flask_smorest import Api
from werkzeug.exceptions import BadRequest as HTTPBadRequest

from idp.api.envelope import ErrorEnvelopeSchema, render_api_error
from idp.error_handlers import register_renderer
from idp.errors import BadRequest, UnsupportedMediaType
from idp.extensions import csrf

JSON_BODY_METHODS = {"POST", "PUT", "PATCH"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Error responses every operation of a kind can give, documented even when a view does not list them.
COMMON_ERROR_RESPONSES = {
    "AUTHENTICATION_REQUIRED": (401, "The bearer token is missing, invalid or expired"),
    "MALFORMED_BODY": (400, "The body is not valid JSON"),
    "BODY_TOO_LARGE": (413, "The body is larger than MAX_CONTENT_LENGTH"),
    "NOT_JSON": (415, "The body's Content-Type is not application/json"),
    "INVALID_BODY": (422, "The body failed validation; error.details lists messages per field"),
    "DATABASE_UNAVAILABLE": (503, "The database refused or dropped the connection; retry after Retry-After seconds"),
}
EVERY_OPERATION_ERRORS = ("DATABASE_UNAVAILABLE",)
SECURED_ERRORS = ("AUTHENTICATION_REQUIRED",)
BODY_ERRORS = ("MALFORMED_BODY", "BODY_TOO_LARGE", "NOT_JSON", "INVALID_BODY")


class EnvelopeApi(Api):
    """flask-smorest's Api without its app-wide error handler: errors are rendered per surface.

    Registering a blueprint also documents the errors common to its operations: 503 on all, 401 on
    those with `security`, and 400/413/415/422 on those with a request body.
    """

    ERROR_SCHEMA = ErrorEnvelopeSchema

    def _register_error_handlers(self):
        pass

    def register_blueprint(self, blp, *, parameters=None, **options):
        super().register_blueprint(blp, parameters=parameters, **options)
        for operations in self.spec._paths.values():  # apispec keeps no public accessor for paths
            for method, operation in operations.items():
                if method in HTTP_METHODS:
                    self._document_common_errors(operation)
        close_nullable_objects(self.spec.components.schemas)

    def _document_common_errors(self, operation: dict) -> None:
        names = EVERY_OPERATION_ERRORS + (SECURED_ERRORS if operation.get("security") else ()) + \
            (BODY_ERRORS if "requestBody" in operation else ())
        responses = operation.setdefault("responses", {})
        for name in names:
            status = str(COMMON_ERROR_RESPONSES[name][0])
            if status not in responses or _is_generic(responses[status], status):
                responses[status] = self.spec.components.get_ref("response", name)


def _is_generic(response: dict, status: str) -> bool:
    """True for flask-smorest's bare per-status response (e.g. 422 'Unprocessable Entity')."""
    return response.get("$ref", "").endswith("/" + http.HTTPStatus(int(status)).name)


def close_nullable_objects(node) -> None:
    """Make apispec's OpenAPI 3.0 rendering of a nullable nested schema accept only null.

    apispec writes `anyOf: [{type: object, nullable: true}, {$ref: X}]`, whose first branch admits
    any object at all; `enum: [null]` narrows it to the null it stands for (OpenAPI 3.0.3 4.7.24.1).
    """
    if isinstance(node, dict):
        for branch in node.get("anyOf", []):
            if branch == {"type": "object", "nullable": True}:
                branch["enum"] = [None]
        for value in node.values():
            close_nullable_objects(value)
    elif isinstance(node, list):
        for value in node:
            close_nullable_objects(value)


def register_common_error_responses(api: Api) -> None:
    for name, (_, description) in COMMON_ERROR_RESPONSES.items():
        api.spec.components.response(name, {"description": description, "content": {
            "application/json": {"schema": ErrorEnvelopeSchema}}})


def require_json_body() -> None:
    """415 for a body that is not JSON (a hook of each API blueprint); an empty body is left to the schema."""
    if request.method not in JSON_BODY_METHODS:
        return
    if request.content_length == 0 or (request.content_length is None and not request.headers.get("Transfer-Encoding")):
        return
    if not request.is_json:
        raise UnsupportedMediaType(details={"content_type": request.mimetype})
    if _has_lone_surrogate(_parsed_body()):
        raise BadRequest("The request body is not valid JSON: a string holds an unpaired UTF-16 surrogate.",
                         details={"_body": ["Strings must be valid Unicode (RFC 8259 section 8.2)."]})


def _parsed_body():
    """The body parsed by the app's bounded JSON provider (depth, number length; idp.requests) and
    cached on the request. Any refusal is a 400 here, before webargs parses the bytes again with the standard
    library (which would raise RecursionError or Python's integer-length ValueError as a 500)."""
    if not request.get_data(cache=True):
        return None  # an empty chunked body: missing fields are the schema's to name
    try:
        return request.get_json()
    except HTTPBadRequest as exc:  # idp.requests.BoundedRequest says why in the description
        raise BadRequest(exc.description, details={"_body": ["Invalid JSON body."]}) from None


def _has_lone_surrogate(node) -> bool:
    """True when any string (key or value) in parsed JSON holds a "\\ud800"-style unpaired surrogate.

    Python's json accepts them, but they cannot be encoded as UTF-8, so hashing or storing such a
    string would fail deep inside a service.
    """
    if isinstance(node, str):
        return any("\ud800" <= char <= "\udfff" for char in node)
    if isinstance(node, dict):
        return any(_has_lone_surrogate(key) or _has_lone_surrogate(value) for key, value in node.items())
    if isinstance(node, list):
        return any(_has_lone_surrogate(value) for value in node)
    return False


def setup_api(app: Flask) -> Api:
    register_renderer(app, "/api/", render_api_error)
    api = EnvelopeApi(app, spec_kwargs={"info": {"description": "Authy2 management API (JSON envelope)."}})
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    register_common_error_responses(api)
    from idp.api import routes

    for blueprint in routes.BLUEPRINTS:
        csrf.exempt(blueprint)  # bearer-token API: no ambient cookie credentials to forge
        api.register_blueprint(blueprint)
    from idp.api.docs import bp as reference

    app.register_blueprint(reference)
    app.extensions["api"] = api
    return api
