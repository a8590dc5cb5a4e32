"""OAuth2Request shapes: the live Flask request (URI built from ISSUER, never the Host header) and a
stored pending authorization request replayed on resume."""
from __future__ import annotations

from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import Request, current_app


class IssuerOAuth2Request(FlaskOAuth2Request):
    """The current request, its URI rebuilt on ISSUER so proxies and Host headers cannot change it."""

    def __init__(self, request: Request):
        uri = current_app.config["ISSUER"] + request.full_path.rstrip("?")
        OAuth2Request.__init__(self, method=request.method, uri=uri, headers=request.headers)
        self._request = request
        self.payload = FlaskOAuth2Payload(request)
        self.browser_session = None


class StoredAuthorizationRequest(OAuth2Request):
    """A pending authorization request's validated parameters, replayed as a GET to /oauth2/authorize."""

    def __init__(self, params: dict):
        super().__init__(method="GET", uri=current_app.config["ISSUER"] + "/oauth2/authorize", headers={})
        self.payload = BasicOAuth2Payload(dict(params))
        self.browser_session = None

    @property
    def args(self) -> dict:
        return self.payload.data

    @property
    def form(self) -> dict:
        return {}


def replace_payload(request: OAuth2Request, params: dict) -> None:
    """Swap the request's parameters for `params` (request-object claims merged in)."""
    request.payload = BasicOAuth2Payload(dict(params))
