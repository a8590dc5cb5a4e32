"""OAuth2Request shapes: the live Flask request (URI built from ISSUER, never the Host header) and a
stored pending authorization request replayed on resume."""
from __future__ import annotations

from collections import defaultdict
from functools import cached_property

from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import Request, current_app

from idp.config import plain_http_issuer


class RequestValuesPayload(OAuth2Payload):
    """The request's parameters (query, and form for a POST), read into plain dicts once.

    `data` answers what the MultiDict would (each name's first value) and `datalist` keeps every
    value, so the duplicate-parameter checks (RFC 6749 3.1, 3.2) see them all; Authlib and the
    authorization checks read parameters dozens of times per request, each a plain dict lookup.
    """

    def __init__(self, request: Request):
        self._request = request

    @cached_property
    def data(self) -> dict:
        return self._values().to_dict()

    @cached_property
    def datalist(self) -> defaultdict[str, list]:
        return defaultdict(list, self._values().lists())

    def _values(self):
        """`request.values` (the query, and the form unless a GET), without merging the two when the
        query is empty: a token request's parameters are all in its form."""
        request = self._request
        if request.method != "GET" and not request.query_string:
            return request.form
        return request.values


def _init_on_issuer(oauth_request: OAuth2Request, method: str, path: str, headers) -> None:
    """OAuth2Request's set-up for `path` on ISSUER. Authlib refuses a plain-http request URI other than
    loopback (RFC 6749 3.1); this URI is the ISSUER's, which start-up already ruled on (production requires
    https; a development ISSUER on plain http is warned about), so Authlib checks the https form of it and
    keeps every other https check it makes (client metadata, for one)."""
    issuer = current_app.config["ISSUER"]
    uri = issuer + path
    checked = "https:" + uri[len("http:"):] if uri.startswith("http:") and plain_http_issuer(issuer) else uri
    # The headers are set after: Authlib's `headers or {}` would count a request's headers one by one.
    OAuth2Request.__init__(oauth_request, method=method, uri=checked)
    oauth_request.uri = uri
    oauth_request.headers = headers


class IssuerOAuth2Request(FlaskOAuth2Request):
    """The current request, its URI rebuilt on ISSUER so proxies and Host headers cannot change it."""

    def __init__(self, request: Request):
        # full_path, less its "?" when there is no query (it builds one for every request)
        path = request.full_path.rstrip("?") if request.query_string else request.path
        _init_on_issuer(self, request.method, path, request.headers)
        self._request = request
        self.payload = RequestValuesPayload(request)
        self.browser_session = None


class StoredAuthorizationRequest(OAuth2Request):
    """A pending authorization request's validated parameters, replayed as a GET to /oauth2/authorize."""

    def __init__(self, params: dict):
        _init_on_issuer(self, "GET", "/oauth2/authorize", {})
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
