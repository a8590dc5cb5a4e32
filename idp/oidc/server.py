"""The Authlib authorization server for one app, kept in app.extensions["oidc"]["server"]."""
from __future__ import annotations

import json

from authlib.integrations.flask_oauth2 import AuthorizationServer as FlaskAuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Request, UnsupportedGrantTypeError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from flask import Flask, Response, request
from flask.json.provider import DefaultJSONProvider

from idp.oidc.authorization_checks import AuthorizationChecks
from idp.oidc.client_auth import register_client_auth
from idp.oidc.clients import query_client
from idp.oidc.grants.authorization_code import AuthorizationCodeGrant, OpenIDCodeExtension
from idp.oidc.grants.client_credentials import ClientCredentialsGrant
from idp.oidc.grants.pkce import S256CodeChallenge
from idp.oidc.grants.refresh_token import RefreshTokenGrant
from idp.oidc.logout import EndSession
from idp.oidc.oauth_requests import IssuerOAuth2Request
from idp.oidc.registration import register_registration_endpoints
from idp.oidc.scopes import SUPPORTED_SCOPES
from idp.oidc.token_endpoints import register_token_endpoints
from idp.services import audit

AUDITED_PATHS = ("/oauth2/token", "/oauth2/introspect", "/oauth2/revoke")


class AuthorizationServer(FlaskAuthorizationServer):
    """Authlib's server with our request shape; tokens are persisted where they are minted."""

    def __init__(self, app: Flask | None = None, query_client=None):
        # grant_type -> the token grants registered for it, in registration order.
        self._token_grants_by_type: dict[str | None, list] = {}
        self._encode_json = None
        super().__init__(app, query_client=query_client)

    def init_app(self, app: Flask, query_client=None, save_token=None) -> None:
        super().init_app(app, query_client=query_client, save_token=save_token)
        provider = app.json
        # The app's provider is a subclass that changes only how JSON is read (idp.requests).
        if isinstance(provider, DefaultJSONProvider) and type(provider).dumps is DefaultJSONProvider.dumps:
            # flask.json.dumps's own encoding (the provider's settings), without its per-call app lookup
            self._encode_json = json.JSONEncoder(default=provider.default, ensure_ascii=provider.ensure_ascii,
                                                 sort_keys=provider.sort_keys).encode

    def register_grant(self, grant_cls, extensions=None) -> None:
        super().register_grant(grant_cls, extensions)
        if hasattr(grant_cls, "check_token_endpoint"):
            self._token_grants_by_type.setdefault(grant_cls.GRANT_TYPE, []).append((grant_cls, extensions))

    def get_token_grant(self, request):
        """Authlib's choice (the first registered grant whose check_token_endpoint accepts the request),
        asking only the grants registered for the request's grant_type instead of every grant in turn."""
        grant_type = request.payload.grant_type
        for grant_cls, extensions in self._token_grants_by_type.get(grant_type, ()):
            if grant_cls.check_token_endpoint(request):
                grant = grant_cls(request, self)
                for extension in extensions or ():
                    extension(grant)
                return grant
        raise UnsupportedGrantTypeError(grant_type)

    def create_oauth2_request(self, req) -> OAuth2Request:
        if isinstance(req, OAuth2Request):
            return req
        # The request object itself, not the proxy: Authlib reads its parameters dozens of times.
        return IssuerOAuth2Request(request._get_current_object())

    def handle_response(self, status_code, payload, headers):
        """Authlib's answer (its JSON body, status and headers), the body encoded as flask.json.dumps does."""
        if self._encode_json is None or not isinstance(payload, dict):
            return super().handle_response(status_code, payload, headers)
        return Response(self._encode_json(payload).encode(), status=status_code, headers=headers)

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
    register_token_endpoints(server)
    register_registration_endpoints(server)
    server.register_endpoint(EndSession)
    return server
