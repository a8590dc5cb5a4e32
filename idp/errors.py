"""One error hierarchy for the domain; each surface (API envelope, OAuth JSON, HTML) renders it."""
from __future__ import annotations


class AppError(Exception):
    """A failure the client caused or may see. `message` is safe to show; `detail` is for logs."""

    code = 400
    type = "BAD_REQUEST"
    message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, details: dict | None = None,
                 detail: str | None = None, headers: dict | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details or {}
        self.detail = detail
        self.headers = headers or {}


class ValidationError(AppError):
    code = 422
    type = "VALIDATION_ERROR"
    message = "The request is not valid."


class BadRequest(AppError):
    code = 400
    type = "BAD_REQUEST"


class Unauthorized(AppError):
    code = 401
    type = "UNAUTHORIZED"
    message = "Authentication is required."


class InvalidCredentials(Unauthorized):
    type = "INVALID_CREDENTIALS"
    message = "Invalid email or password."


class Forbidden(AppError):
    code = 403
    type = "FORBIDDEN"
    message = "You are not allowed to do this."


class SingleSignOnRequired(Forbidden):
    """The address's domain signs in only at its upstream identity provider (enforced SSO)."""

    type = "SSO_REQUIRED"
    message = "This address signs in with single sign-on; use the sign-in page."


class NotFound(AppError):
    code = 404
    type = "NOT_FOUND"
    message = "The resource was not found."


class Conflict(AppError):
    code = 409
    type = "CONFLICT"
    message = "The request conflicts with the current state."


class PreconditionFailed(AppError):
    """A conditional request's precondition (If-Match) is false (RFC 9110 13.1.1, 15.5.13)."""

    code = 412
    type = "PRECONDITION_FAILED"
    message = "The resource has changed since you read it; get it again and retry."


class RateLimited(AppError):
    code = 429
    type = "RATE_LIMITED"
    message = "Too many requests; try again later."


class ServiceUnavailable(AppError):
    code = 503
    type = "SERVICE_UNAVAILABLE"
    message = "The service is temporarily unavailable."


class DatabaseUnavailable(ServiceUnavailable):
    """The database refused or dropped the connection. The pool discards the broken connection, so
    the next request gets a fresh one: a client may retry after RETRY_AFTER_SECONDS."""

    RETRY_AFTER_SECONDS = 1
    message = "The service is temporarily unavailable; try again in a moment."

    def __init__(self, message: str | None = None, **kwargs):
        kwargs["headers"] = {"Retry-After": str(self.RETRY_AFTER_SECONDS), **(kwargs.get("headers") or {})}
        super().__init__(message, **kwargs)


class UnsupportedMediaType(AppError):
    code = 415
    type = "UNSUPPORTED_MEDIA_TYPE"
    message = "Content-Type must be application/json."
