"""Authorization responses: to the redirect URI in query or form_post mode, always with RFC 9207
`iss`; or, when no redirect URI can be trusted, an HTML error page (never a redirect)."""
from __future__ import annotations

from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from flask import Response, current_app, g, make_response, redirect, render_template

RESPONSE_MODES = ("query", "form_post")


def authorization_response(redirect_uri: str, params: list[tuple[str, str]], response_mode: str | None):
    """(status, body, headers) delivering `params` plus `iss` (RFC 9207 2) to `redirect_uri`."""
    params = [*params, ("iss", current_app.config["ISSUER"])]
    if response_mode == "form_post":
        body = render_template("oidc/form_post.html", redirect_uri=redirect_uri, params=params)
        return 200, body, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
    return 302, "", [("Location", with_query(redirect_uri, params)), ("Cache-Control", "no-store")]


def with_query(uri: str, params: list[tuple[str, str]]) -> str:
    """`uri` with `params` added to its query (the usual URI without one skips Authlib's re-parse)."""
    if "?" in uri or "#" in uri:
        return add_params_to_uri(uri, params)
    return f"{uri}?{urlencode(params)}"


def as_flask_response(result) -> Response:
    """A Flask response from Authlib's (status, body, headers)."""
    status, body, headers = result
    response = make_response(body, status)
    for name, value in headers:
        response.headers[name] = value
    return response


def error_response(error: OAuth2Error, response_mode: str | None = None) -> Response:
    """RFC 6749 4.1.2.1: back to a trusted redirect URI with error/state/iss, else an HTML page."""
    if error.redirect_uri:
        params = list(error.get_body())
        mode = response_mode if response_mode in RESPONSE_MODES else "query"
        return as_flask_response(authorization_response(error.redirect_uri, params, mode))
    return error_page(error.error, error.get_error_description() or "The authorization request is not valid.")


def error_page(error: str, description: str, status: int = 400) -> Response:
    """The HTML error page for an authorization request that cannot be answered by redirect."""
    body = render_template("oidc/error.html", error=error, description=description, request_id=g.get("request_id"))
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect_to(url: str) -> Response:
    """A 302 to an interaction page, never cached."""
    response = redirect(url, code=302)
    response.headers["Cache-Control"] = "no-store"
    return response
