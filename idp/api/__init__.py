"""REST API v1 on flask-smorest, speaking the seed's envelope on every /api/* response."""
from __future__ import annotations

from flask import Flask, request
from flask_smorest import Api

from idp.api.envelope import ErrorEnvelopeSchema
from idp.errors import UnsupportedMediaType
from idp.extensions import csrf


class EnvelopeApi(Api):
    """flask-smorest's Api without its app-wide error handler: errors are rendered per surface."""

    ERROR_SCHEMA = ErrorEnvelopeSchema

    def _register_error_handlers(self):
        pass


JSON_BODY_METHODS = {"POST", "PUT", "PATCH"}


def require_json_body() -> None:
    """415 for a body that is not JSON on /api/*; an empty body is left to the schema."""
    if not request.path.startswith("/api/") or request.method not in JSON_BODY_METHODS:
        return
    if request.content_length == 0 or (request.content_length is None and not request.headers.get("Transfer-Encoding")):
        return
    if not request.is_json:
        raise UnsupportedMediaType(details={"content_type": request.mimetype})


def setup_api(app: Flask) -> Api:
    api = EnvelopeApi(app, spec_kwargs={"info": {"description": "Authy2 management API (JSON envelope)."}})
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    from idp.api import routes

    for blueprint in routes.BLUEPRINTS:
        csrf.exempt(blueprint)  # bearer-token API: no ambient cookie credentials to forge
        api.register_blueprint(blueprint)
    app.extensions["api"] = api
    return api
