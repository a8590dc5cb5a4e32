"""Bearer authentication for the API: `Authorization: Bearer <session token>`."""
from __future__ import annotations

from functools import wraps

from flask import g, request

from idp.errors import Forbidden, Unauthorized
from idp.models import Session, SessionKind, User
from idp.services import sessions

BEARER_SECURITY = [{"bearerAuth": []}]


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def login_required(view):
    """Authenticate the API session token, slide its idle window, and expose g.user / g.session."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        token = bearer_token()
        if token is None:
            raise Unauthorized("A bearer token is required.", headers={"WWW-Authenticate": 'Bearer realm="authy2"'})
        try:
            session = sessions.authenticate(token, kind=SessionKind.API)
        except Unauthorized as exc:
            exc.headers = {"WWW-Authenticate": 'Bearer realm="authy2", error="invalid_token"'}
            raise
        g.session, g.user = session, session.user
        return view(*args, **kwargs)

    return wrapper


def admin_required(view):
    """login_required, and the user must be a platform admin."""

    @login_required
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user().is_admin:
            raise Forbidden("Platform admin rights are required.")
        return view(*args, **kwargs)

    return wrapper


def current_user() -> User:
    return g.user


def current_session() -> Session:
    return g.session
