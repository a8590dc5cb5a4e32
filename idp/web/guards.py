"""Page guards: who is signed in."""
from __future__ import annotations

from functools import wraps

from flask import g, redirect, request, url_for

from idp.models import User
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
