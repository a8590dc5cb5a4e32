"""/api/v1/auth: register, login, logout, me, and the user's own sessions."""
from __future__ import annotations

from flask import g, request
from flask_smorest import Blueprint

from idp.api.envelope import ErrorEnvelopeSchema, envelope_of, ok
from idp.api.schemas.accounts import (CountMetaSchema, LoginResultSchema, LoginSchema, MeSchema, RegisterSchema,
                                      SessionDataSchema, SessionSchema, UserDataSchema)
from idp.api.security import BEARER_SECURITY, current_session, current_user, login_required
from idp.extensions import limiter
from idp.security import ratelimits
from idp.services import accounts, audit, password_sign_in, session_end, sessions

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts, login and sessions")

UNAUTHORIZED = {"schema": ErrorEnvelopeSchema, "description": "Missing, invalid, expired or revoked bearer token"}
INVALID_BODY = {"schema": ErrorEnvelopeSchema, "description": "The body is not valid (error.details names the fields)"}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # the body carries a bearer token
RATE_LIMITED = {"schema": ErrorEnvelopeSchema, "description": "Too many attempts; see the Retry-After header"}


def _audit_rate_limited(action: str):
    def on_breach(limit) -> None:
        audit.record_failure(action, details={"reason": "rate_limited", "limit": str(limit.limit)})
    return on_breach


def _limited(limit_value, key_func, action: str):
    return limiter.limit(limit_value, key_func=key_func, exempt_when=ratelimits.limits_disabled,
                         on_breach=_audit_rate_limited(action))


@blp.route("/register", methods=["POST"])
# One bucket with the hosted /register page (same scope and key): one budget per address.
@limiter.shared_limit(ratelimits.register_limit, ratelimits.REGISTER_SCOPE, key_func=ratelimits.ip_key,
                      exempt_when=ratelimits.limits_disabled, on_breach=_audit_rate_limited("register"))
@blp.arguments(RegisterSchema)
@blp.response(201, envelope_of(UserDataSchema))
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="Registration is disabled")
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="The email cannot be used (generic message)")
@blp.alt_response(415, schema=ErrorEnvelopeSchema, description="The body is not JSON")
@blp.alt_response(422, **INVALID_BODY)
@blp.alt_response(429, **RATE_LIMITED)
def register(body: dict):
    """Create an account with email, password and name."""
    user = accounts.register(body["email"], body["password"], body["name"])
    return ok({"user": user}, "Account created", code=201)


@blp.route("/login", methods=["POST"])
@_limited(ratelimits.login_ip_limit, ratelimits.ip_key, "login")
@blp.arguments(LoginSchema)
@blp.response(200, envelope_of(LoginResultSchema))
@blp.alt_response(401, schema=ErrorEnvelopeSchema,
                  description="INVALID_CREDENTIALS, the same for unknown email, wrong password and inactive account")
@blp.alt_response(415, schema=ErrorEnvelopeSchema, description="The body is not JSON")
@blp.alt_response(422, **INVALID_BODY)
@blp.alt_response(429, **RATE_LIMITED)
def login(body: dict):
    """Check email and password and open an API session; returns its bearer token.

    The hosted sign-in's lockout applies (per account and address, per address, the account-wide
    slow-down); a success sets the same device cookie, which a first-party page on this site sends
    back to skip the slow-down.
    """
    session, token = password_sign_in.log_in_api(body["email"], body["password"],
                                                 user_agent=request.headers.get("User-Agent"))
    g.session = session  # the new session is the caller's current one from now on
    data = {"token": token, "token_type": "Bearer", "expires_at": session.expires_at,
            "session": session, "user": session.user}
    return ok(data, "Login successful"), 200, NO_STORE


@blp.route("/logout", methods=["POST"])
@blp.doc(security=BEARER_SECURITY)
@login_required
@blp.response(200, envelope_of(None))
@blp.alt_response(401, **UNAUTHORIZED)
def logout():
    """Revoke the session making this request."""
    session_end.sign_out([current_session()], channel="api")
    return ok(None, "Logged out")


@blp.route("/me", methods=["GET"])
@blp.doc(security=BEARER_SECURITY)
@login_required
@blp.response(200, envelope_of(MeSchema))
@blp.alt_response(401, **UNAUTHORIZED)
def me():
    """The signed-in user and the session making this request."""
    return ok({"user": current_user(), "session": current_session()})


@blp.route("/sessions", methods=["GET"])
@blp.doc(security=BEARER_SECURITY)
@login_required
@blp.response(200, envelope_of(SessionSchema, many=True, meta=CountMetaSchema))
@blp.alt_response(401, **UNAUTHORIZED)
def list_sessions():
    """The user's active sessions, newest first; `current` marks the one making this request."""
    active = sessions.list_active(current_user())
    return ok(active, meta={"count": len(active)})


@blp.route("/sessions/refresh", methods=["POST"])
@blp.doc(security=BEARER_SECURITY)
@login_required
@blp.response(200, envelope_of(SessionDataSchema))
@blp.alt_response(401, **UNAUTHORIZED)
def refresh_session():
    """Extend the current session's idle window; never past its absolute expiry."""
    session = current_session()
    sessions.touch(session)
    return ok({"session": session}, "Session extended")


@blp.route("/sessions/<string:session_id>", methods=["DELETE"])
@blp.doc(security=BEARER_SECURITY)
@login_required
@blp.response(200, envelope_of(SessionDataSchema))
@blp.alt_response(401, **UNAUTHORIZED)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such session among the user's own")
def revoke_session(session_id: str):
    """Revoke one of the user's own sessions (revoking an ended one again is a no-op)."""
    ended = session_end.revoke_own_session(current_user(), session_id, channel="api")
    return ok({"session": ended.sessions[0]}, "Session revoked")
