"""Render every error in its surface's format: an HTML page unless a surface claimed the path.

Each surface registers its own rendering for its own paths with `register_renderer` (the API its
envelope on /api, the OAuth endpoints RFC 6749 JSON), so this module depends on none of them.
"""
from __future__ import annotations

import sqlite3
from typing import Callable

from flask import Flask, current_app, render_template, request
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError

from idp.errors import AppError, Conflict, DatabaseUnavailable, ServiceUnavailable
from idp.extensions import limiter
from idp.request_id import current_request_id

try:
    from psycopg import OperationalError as PsycopgOperationalError
except ImportError:  # the embedded default (SQLite) runs without the PostgreSQL driver
    PsycopgOperationalError = sqlite3.OperationalError

# Driver errors that escape SQLAlchemy's wrapping (raw connections): the server is unreachable or
# went away, or SQLite's file is locked or cannot be opened.
DRIVER_UNAVAILABLE_ERRORS = (sqlite3.OperationalError, PsycopgOperationalError)

HTTP_ERROR_TYPES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 412: "PRECONDITION_FAILED", 413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR", 429: "RATE_LIMITED", 500: "INTERNAL_ERROR", 503: "SERVICE_UNAVAILABLE",
}


def is_database_unavailable(error: BaseException) -> bool:
    """True for a lost, refused or timed-out database connection (SQLAlchemy or driver error)."""
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or isinstance(error, OperationalError)
    return isinstance(error, (DisconnectionError, PoolTimeout, *DRIVER_UNAVAILABLE_ERRORS))


def database_unavailable(error: BaseException) -> DatabaseUnavailable:
    """The 503 for a database failure; the log detail is the driver's first line, never the SQL or
    its parameters (SQLAlchemy's own message carries both)."""
    cause = getattr(error, "orig", None) or error
    first_line = (str(cause).strip().splitlines() or [""])[0][:200]
    return DatabaseUnavailable(detail=f"database unavailable: {type(cause).__name__}: {first_line}")


def _as_app_error(error: Exception) -> AppError:
    if isinstance(error, InternalServerError) and error.original_exception is not None:
        error = error.original_exception  # an exception Flask caught outside the view (an after_request hook)
    if isinstance(error, AppError):
        return error
    if is_database_unavailable(error):
        return database_unavailable(error)
    if isinstance(error, IntegrityError):
        # A uniqueness race lost at flush time: the client's request clashes with data, not a bug.
        return Conflict("The request conflicts with existing data.",
                        detail=f"integrity error: {type(error.orig).__name__}")
    if isinstance(error, HTTPException) and error.code and error.code < 500:
        return _from_http_exception(error)
    code = error.code if isinstance(error, HTTPException) and error.code and error.code > 500 else 500
    app_error = AppError("An internal error occurred." if code == 500 else "The service is temporarily unavailable.")
    app_error.code, app_error.type = code, HTTP_ERROR_TYPES.get(code, "HTTP_ERROR")
    return app_error


def _http_error_message(error: HTTPException, data: dict, details: dict) -> str:
    """A clear message for werkzeug/webargs errors (webargs puts parse errors under `messages`)."""
    if data.get("message"):
        return data["message"]
    if error.code == 400 and "json" in details:
        return "The request body is not valid JSON."
    if error.code == 422 or (error.code == 400 and details):
        return "The request is not valid."
    if error.code == 413:
        return f"The request body is larger than the limit of {current_app.config['MAX_CONTENT_LENGTH']} bytes."
    if error.code == 429:
        return "Too many requests; try again later."
    return error.description or error.name


def _from_http_exception(error: HTTPException) -> AppError:
    data = getattr(error, "data", None) or {}
    details = data.get("errors") or data.get("messages") or {}
    headers = dict(data.get("headers") or {})
    if error.code == 405 and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    app_error = AppError(_http_error_message(error, data, details), details=_flatten_locations(details),
                         headers=headers)
    app_error.code, app_error.type = error.code, HTTP_ERROR_TYPES.get(error.code, "HTTP_ERROR")
    return app_error


def _flatten_locations(details: dict) -> dict:
    """webargs nests messages under their location ('json', 'query'); the envelope shows fields."""
    if isinstance(details, dict) and len(details) == 1 and next(iter(details)) in ("json", "query", "form"):
        inner = next(iter(details.values()))
        return inner if isinstance(inner, dict) else {"_body": inner}
    return details if isinstance(details, dict) else {"_body": details}


def render_html_error(error: AppError):
    body = render_template("errors/error.html", code=error.code, message=error.message,
                           request_id=current_request_id())
    return body, error.code, error.headers


def register_renderer(app: Flask, prefix: str, renderer: Callable[[AppError], object]) -> None:
    """Let a surface render AppErrors for paths under `prefix` ("/api/" also claims "/api").

    The longest matching prefix wins, so a surface can claim paths inside another's (federation's
    browser endpoints under /api/v1/auth/external/ answer HTML pages, not the envelope).
    """
    renderers = app.extensions.setdefault("error_renderers", [])
    renderers.append((prefix, renderer))
    renderers.sort(key=lambda entry: len(entry[0]), reverse=True)


def render_error(error: AppError):
    path = request.path
    for prefix, renderer in current_app.extensions.get("error_renderers", []):
        if path.startswith(prefix) or path == prefix.rstrip("/"):
            return renderer(error)
    return render_html_error(error)


def handle_error(error: Exception):
    app_error = _as_app_error(error)
    if isinstance(app_error, ServiceUnavailable):
        # Expected while a dependency is down: a warning naming the cause, no traceback.
        current_app.logger.warning("%s (request_id=%s): %s", app_error.type, current_request_id(),
                                   app_error.detail or app_error.message)
        _drop_rate_limit_headers()
    elif app_error.code >= 500:
        original = getattr(error, "original_exception", None) or error
        current_app.logger.error("unhandled error (request_id=%s)", current_request_id(),
                                 exc_info=(type(original), original, original.__traceback__))
    elif app_error.detail:
        current_app.logger.info("%s (request_id=%s): %s", app_error.type, current_request_id(), app_error.detail)
    return render_error(app_error)


def _drop_rate_limit_headers() -> None:
    """Flask-Limiter stamps a limited route's answer with Retry-After = its window's reset (up to an
    hour); a 503's Retry-After says when the service is back, so the window's headers stay off it."""
    if limiter.enabled and limiter.initialized:
        limiter.context.view_rate_limit = None


def setup_error_handlers(app: Flask) -> None:
    app.extensions.setdefault("error_renderers", [])
    app.register_error_handler(AppError, handle_error)
    app.register_error_handler(HTTPException, handle_error)
    app.register_error_handler(InternalServerError, handle_error)
    app.register_error_handler(Exception, handle_error)
