"""Page guards: who is signed in, and the pending authorization request a page works for."""
from __future__ import annotations

from functools import wraps

from flask import g, redirect, request, url_for

from idp.errors import NotFound
from idp.models import User
from idp.security.request_hygiene import has_control_character
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


def find_pending(request_id: str | None):
    """The pending authorization request `request_id`, or None when absent, unknown or expired."""
    if not request_id or len(request_id) > 100 or has_control_character(request_id):
        return None
    try:
        return authorization_requests.get_pending(request_id)
    except NotFound:
        return None
