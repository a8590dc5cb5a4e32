"""Page guards: who is signed in, and the pending authorization request a page works for."""
from __future__ import annotations

from functools import wraps

from flask import g, redirect, request, url_for

from idp.errors import NotFound
from idp.models import User
from idp.services import authorization_requests
from idp.services.browser_sessions import current_browser_session


def signed_in_required(view):
    """Send a visitor without a live browser session to sign in, coming back here afterwards."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        session = current_browser_session()
        if session is None:
            return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
        g.page_user = session.user
        return view(*args, **kwargs)

    return wrapper


def page_user() -> User:
    return g.page_user


def has_control_character(value: str) -> bool:
    return any(ord(char) < 32 or ord(char) == 127 for char in value)


def refuse_control_characters_in_path() -> None:
    """404 for an id in the path holding a control character: no id has one, and PostgreSQL refuses
    NUL in a query parameter (it would surface as a 500)."""
    if any(isinstance(v, str) and has_control_character(v) for v in (request.view_args or {}).values()):
        raise NotFound("The page was not found.")


def forbid_caching(response):
    """Pages show personal data and one-time form tokens: never stored by a cache (RFC 9111 5.2.2.5).

    A response that set its own policy (the public brand stylesheet) keeps it.
    """
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def find_pending(request_id: str | None):
    """The pending authorization request `request_id`, or None when absent, unknown or expired."""
    if not request_id or len(request_id) > 100 or has_control_character(request_id):
        return None
    try:
        return authorization_requests.get_pending(request_id)
    except NotFound:
        return None
