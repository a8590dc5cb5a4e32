"""The OpenID Provider on Authlib: server setup, grants, client auth, keys, endpoints."""
from __future__ import annotations

import os
import sys

from flask import Flask, jsonify

from idp.config import ConfigError
from idp.errors import AppError

JSON_ERROR_PREFIXES = ("/oauth2/token", "/oauth2/introspect", "/oauth2/revoke", "/oauth2/userinfo",
                       "/oauth2/register", "/oauth2/jwks", "/.well-known/")


def render_oauth_error(error: AppError):
    """RFC 6749 5.2 JSON for failures that reach OAuth endpoints outside Authlib (405, 413, 500...).

    A 503 (the database is unreachable) is `temporarily_unavailable`, the code RFC 6749 4.1.2.1 names
    for an overloaded or maintained server, with the same status and Retry-After on every endpoint.
    """
    code = {503: "temporarily_unavailable"}.get(error.code, "server_error" if error.code >= 500 else "invalid_request")
    response = jsonify({"error": code, "error_description": error.message})
    response.status_code = error.code
    response.headers["Cache-Control"] = "no-store"
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def setup_oidc(app: Flask) -> None:
    """Register the authorization server, its keys and its endpoints on `app`."""
    from idp.error_handlers import register_renderer
    from idp.extensions import csrf
    from idp.oidc import endpoints
    from idp.oidc.backchannel_logout import setup_backchannel_logout
    from idp.oidc.client_cache import ClientCache
    from idp.oidc.discovery import openid_configuration
    from idp.oidc.keys import KeyStore
    from idp.oidc.server import build_server
    from idp.oidc.userinfo import build_protector
    from idp.services.client_metadata import publish_provider_metadata

    retention = max(app.config["ACCESS_TOKEN_LIFETIME"], app.config["ID_TOKEN_LIFETIME"]) + 300
    keys = KeyStore(app.config["KEYS_DIR"], retention)
    check_signing_keys(app, keys)
    app.extensions["oidc"] = {"keys": keys, "client_cache": ClientCache(app.config["CLIENT_CACHE_SECONDS"])}
    app.extensions["oidc"].update(server=build_server(app), userinfo=build_protector())
    publish_provider_metadata(app, openid_configuration)
    # Relying parties POST to these (OIDC Core 3.1.2.1, RFC 6749 3.2, RPI Logout 2); they are guarded by
    # client authentication, bearer tokens, or their own confirmation form, never the browser's cookie alone.
    for view in (endpoints.authorize, endpoints.token, endpoints.introspect, endpoints.revoke, endpoints.userinfo_endpoint,
                 endpoints.end_session, *endpoints.registration_views()):
        csrf.exempt(view)
    app.register_blueprint(endpoints.bp)
    setup_backchannel_logout(app)
    for prefix in JSON_ERROR_PREFIXES:
        register_renderer(app, prefix, render_oauth_error)


def _running_keys_command() -> bool:
    """`flask keys ...` must load the app to make the very keys production insists on."""
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    return os.path.basename(sys.argv[0]) == "flask" and bool(args) and args[0] == "keys"


def check_signing_keys(app: Flask, keys) -> None:
    """Production refuses to start without an active RS256 key; development makes its own."""
    if keys.signing_key("RS256") is not None:
        return
    if app.config["ENV_PROFILE"] == "production":
        if _running_keys_command():
            return
        raise ConfigError(f"Authy2 cannot start:\n  - no active RS256 signing key in KEYS_DIR "
                          f"({app.config['KEYS_DIR']}); make one with `flask keys generate` then `flask keys "
                          f"rotate`, or `flask keys ensure` (see keys/README.md)")
    made = keys.ensure()
    app.logger.warning("UNSAFE DEVELOPMENT DEFAULT: generated signing keys %s in %s",
                       ", ".join(k["kid"] for k in made), app.config["KEYS_DIR"])
