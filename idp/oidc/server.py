"""The Authlib authorization server for one app, kept in app.extensions["oidc"]["server"]."""
from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer as FlaskAuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from flask import Flask, request
from sqlalchemy import select

from idp.extensions import db
from idp.models import OAuthClient
from idp.oidc.authorization_checks import AuthorizationChecks
from idp.oidc.client_auth import register_client_auth
from idp.oidc.client_cache import client_cache, clients_seen_by_request
from idp.oidc.grants.authorization_code import AuthorizationCodeGrant, OpenIDCodeExtension
from idp.oidc.grants.client_credentials import ClientCredentialsGrant
from idp.oidc.grants.pkce import S256CodeChallenge
from idp.oidc.grants.refresh_token import RefreshTokenGrant
from idp.oidc.oauth_requests import IssuerOAuth2Request
from idp.oidc.scopes import SUPPORTED_SCOPES
from idp.services import audit

AUDITED_PATHS = ("/oauth2/token", "/oauth2/introspect", "/oauth2/revoke")


def load_client(client_id: str | None) -> OAuthClient | None:
    """The active client with this client_id, read from the database, or None."""
    if not client_id or not isinstance(client_id, str):
        return None
    client = db.session.scalars(select(OAuthClient).where(OAuthClient.client_id == client_id)).first()
    return client if client is not None and client.is_active else None


def query_client(client_id: str | None) -> OAuthClient | None:
    """The active client with this client_id, from the per-process cache when fresh (see client_cache).

    Remembered for the rest of the request: an authorization request looks its client up twice.
    """
    if not client_id or not isinstance(client_id, str):
        return None
    seen = clients_seen_by_request()
    if client_id not in seen:
        seen[client_id] = _cached_client(client_id)
    return seen[client_id]


def _cached_client(client_id: str) -> OAuthClient | None:
    cache = client_cache()
    client = cache.get(client_id)
    if client is None:
        client = load_client(client_id)
        if client is not None:
            cache.put(client)
    return client


class AuthorizationServer(FlaskAuthorizationServer):
    """Authlib's server with our request shape; tokens are persisted where they are minted."""

    def create_oauth2_request(self, req) -> OAuth2Request:
        if isinstance(req, OAuth2Request):
            return req
        # The request object itself, not the proxy: Authlib reads its parameters dozens of times.
        return IssuerOAuth2Request(request._get_current_object())

    def handle_error_response(self, req, error):
        """Refusals at the token, introspection and revocation endpoints are audited (no secrets)."""
        if request.path in AUDITED_PATHS:
            client_id = extract_basic_authorization(req.headers)[0] or req.payload.client_id
            audit.record_failure("oauth.request_refused", target_type="client", target_id=client_id,
                                 details={"endpoint": request.path, "error": error.error})
        return super().handle_error_response(req, error)

    def save_token(self, token, req) -> None:
        """Nothing to do: idp.oidc.tokens.issue_tokens writes each token's row as it mints it."""


def build_server(app: Flask) -> AuthorizationServer:
    """The authorization server with its grants, client auth methods and endpoints."""
    server = AuthorizationServer(app, query_client=query_client)
    server.scopes_supported = list(SUPPORTED_SCOPES)
    register_client_auth(server)
    server.register_grant(AuthorizationCodeGrant,
                          [S256CodeChallenge(required=True), OpenIDCodeExtension(), AuthorizationChecks()])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    from idp.oidc.logout import EndSession
    from idp.oidc.registration import register_registration_endpoints
    from idp.oidc.token_endpoints import register_token_endpoints

    register_token_endpoints(server)
    register_registration_endpoints(server)
    server.register_endpoint(EndSession)
    return server
