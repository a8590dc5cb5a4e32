"""Hosted, server-rendered pages: sign-in, registration, consent, logout, account."""
from __future__ import annotations

from flask import Flask


def setup_web(app: Flask) -> None:
    """Register the hosted pages on `app`."""
    from idp.web import (account, account_linking, brand, consent, home, invitations, password_reset,  # noqa: F401
                         registration, sign_in)  # (routes)
    from idp.web.blueprint import bp
    from idp.web.csrf import setup_csrf_page

    if app.config["ISSUER"].startswith("https://"):
        # The form (CSRF) cookie gets the same host-locked prefix as the SSO cookie under HTTPS.
        app.config["SESSION_COOKIE_NAME"] = "__Host-authy2_form"
    else:
        app.config["SESSION_COOKIE_NAME"] = "authy2_form"
    app.register_blueprint(bp)
    setup_csrf_page(app)
    app.after_request(allow_same_origin_referrer)


def allow_same_origin_referrer(response):
    """Pages send Referer to this origin only (never to RPs or other sites).

    Under HTTPS Flask-WTF refuses a form POST whose Referer is missing or foreign (a second CSRF
    defence), so HTML pages cannot use "no-referrer": forms would never be accepted. Runs before
    the security headers' setdefault, so this value wins for HTML.
    """
    if (response.content_type or "").startswith("text/html"):  # the raw header: no parsing per response
        response.headers["Referrer-Policy"] = "same-origin"
    return response
