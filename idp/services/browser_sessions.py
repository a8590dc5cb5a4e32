"""The browser SSO session: a foundation Session (kind browser) carried in a cookie.

Sign-in always opens a new Session and a new cookie value (no fixation); sign-out ends it
server-side (idp.services.session_end, which also tells the relying parties). The cookie is
HttpOnly, SameSite=Lax, and under HTTPS Secure with the __Host- prefix.
"""
from __future__ import annotations

from flask import Flask, current_app, g, request

from idp.models import Session, SessionKind, User
from idp.security.client_ip import client_ip
from idp.services import session_end, sessions
from idp.services.session_end import SessionEnd
from idp.services.sessions import SignIn

PLAIN_COOKIE = "authy2_session"
HOST_COOKIE = "__Host-authy2_session"


def cookie_name() -> str:
    return HOST_COOKIE if current_app.config["ISSUER"].startswith("https://") else PLAIN_COOKIE


def current_browser_session() -> Session | None:
    """The live browser session of this request (idle window slid, coarsely), or None. Cached per request."""
    return _per_request("browser_session", sessions.find_live_session)


def current_sign_in() -> Session | SignIn | None:
    """The browser's live session as the authorization endpoint reads it (idle window slid, coarsely),
    or None: the ORM Session when this request has it already (it signed in, or loaded it), else a
    SignIn from one Core SELECT. Cached per request."""
    if "browser_session" in g:
        return g.browser_session
    return _per_request("browser_sign_in", sessions.find_sign_in)


def presented_sign_in_token() -> str | None:
    """The SSO cookie's value, for a caller that reads the sign-in its own way (keep_sign_in); None
    without a cookie, or when this request already holds its session."""
    if "browser_session" in g or "browser_sign_in" in g:
        return None
    return request.cookies.get(cookie_name()) or None


def keep_sign_in(found: SignIn | None) -> None:
    """What current_sign_in does with a sign-in read for presented_sign_in_token by another statement
    (None: no live one): slide its idle window (coarsely) and keep it for the rest of the request."""
    if found is not None:
        sessions.touch(found, coarse=True)
    g.browser_sign_in = found


def _per_request(name: str, find):
    """What `find` reads for this request's session cookie, its idle window slid (coarsely), kept on
    `g` as `name` for the rest of the request."""
    if name not in g:
        found = find(request.cookies.get(cookie_name()), kind=SessionKind.BROWSER)
        if found is not None:
            sessions.touch(found, coarse=True)
        setattr(g, name, found)
    return g.get(name)


def current_browser_user() -> User | None:
    session = current_browser_session()
    return session.user if session is not None else None


def sign_in(user: User, amr: list[str] | None = None, acr: str | None = None) -> Session:
    """Open a fresh browser session for `user`, ending the one this browser had (no fixation).

    The previous session of another user ends as a logout (its relying parties are told); the same
    user signing in again (prompt=login, max_age) is re-authentication and logs no relying party out.
    """
    old = current_browser_session()
    if old is not None and old.user_id != user.id:
        session_end.end_sessions([old], reason="replaced")
    elif old is not None:
        sessions.revoke(old)
    session, token = sessions.create_session(user, kind=SessionKind.BROWSER, ip_address=client_ip(),
                                             user_agent=request.headers.get("User-Agent"), amr=amr)
    session.acr = acr
    g.browser_session = session
    g.browser_cookie = ("set", token, session)
    return session


def sign_out(*, also: list[Session] | None = None, channel: str = "web", **details) -> SessionEnd:
    """Sign this browser out (session_end.sign_out, with any `also` sessions) and clear the cookie."""
    current = current_browser_session()
    targets = {s.id: s for s in [current, *(also or [])] if s is not None}
    ended = session_end.sign_out(list(targets.values()), channel=channel, **details)
    forget_browser_session()
    return ended


def forget_browser_session() -> None:
    """This browser no longer has a session: drop it from the request and clear the cookie."""
    g.browser_session = None
    g.browser_cookie = ("clear", None, None)


def write_browser_cookie(response):
    """Set or clear the SSO cookie as the request decided (sign_in, sign_out); pages only."""
    action, token, session = g.pop("browser_cookie", (None, None, None))
    if action is None or response.status_code >= 400:
        return response
    secure = current_app.config["ISSUER"].startswith("https://")
    if action == "clear":
        response.delete_cookie(cookie_name(), path="/", secure=secure, httponly=True, samesite="Lax")
        return response
    response.set_cookie(cookie_name(), token, path="/", secure=secure, httponly=True, samesite="Lax",
                        expires=session.absolute_expires_at)
    return response


def setup_browser_sessions(app: Flask) -> None:
    # Registered before the transaction hook so it runs after it (after_request runs in reverse).
    app.after_request(write_browser_cookie)
