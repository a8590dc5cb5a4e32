"""The browser-binding cookie: a random value this IdP gives a browser that starts an upstream sign-in;
only its SHA-256 is stored (on the UpstreamLogin and the PendingLink), so a callback or a link
confirmation is accepted only from the browser that started it (RFC 6749 10.12, RFC 9700 4.7).

Path=/api/v1/auth/external/: only the federation endpoints and the link-confirmation pages see it.
Under an https ISSUER it is `__Secure-` prefixed, Secure and SameSite=None: the SAML HTTP-POST and the
OIDC form_post callbacks are cross-site POSTs, which a SameSite=Lax cookie would not accompany (the
value is useless without the matching state, which an attacker cannot read). Under http (development,
tests) browsers refuse SameSite=None without Secure, so it is Lax there.
"""
from __future__ import annotations

from flask import after_this_request, current_app, g, request

from idp.security.secrets import hash_token, new_token

PLAIN_COOKIE = "authy2_upstream"
SECURE_COOKIE = "__Secure-authy2_upstream"
COOKIE_PATH = "/api/v1/auth/external/"
# Outlives the longest flow it binds: an upstream sign-in, then a 15-minute link confirmation.
MAX_AGE = 60 * 60


def _secure() -> bool:
    return current_app.config["ISSUER"].startswith("https://")


def cookie_name() -> str:
    return SECURE_COOKIE if _secure() else PLAIN_COOKIE


def browser_hash() -> str | None:
    """SHA-256 of this request's binding cookie (or of the one just issued), or None without one."""
    value = g.get("upstream_binding") or request.cookies.get(cookie_name())
    return hash_token(value) if value and len(value) <= 100 else None


def bind_browser() -> str:
    """This browser's binding hash, issuing the cookie when it has none; the cookie is (re)set on the response."""
    value = g.get("upstream_binding") or request.cookies.get(cookie_name())
    if not value or len(value) > 100:
        value = new_token()
    if "upstream_binding" not in g:
        g.upstream_binding = value
        after_this_request(_set_cookie)
    return hash_token(value)


def _set_cookie(response):
    if response.status_code < 400:
        secure = _secure()
        response.set_cookie(cookie_name(), g.upstream_binding, max_age=MAX_AGE, path=COOKIE_PATH, secure=secure,
                            httponly=True, samesite="None" if secure else "Lax")
    return response
