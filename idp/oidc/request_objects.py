"""The `request` parameter (OIDC Core 6.1): unsigned (alg none) or signed with the client's keys.

Request Object members override the same query parameters; `request_uri` is not supported and is
answered with request_uri_not_supported (OIDC Core 6.2, advertised in discovery).
"""
from __future__ import annotations

import json

from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError, OAuth2Request
from authlib.oauth2.rfc9101.errors import InvalidRequestObjectError, RequestUriNotSupportedError
from flask import current_app
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.models import OAuthClient, utcnow
from idp.oidc.authorization_bounds import REQUEST_OBJECT_LIMIT, check_echoed_parameters
from idp.oidc.client_auth import fetch_client_jwks
from idp.oidc.oauth_requests import replace_payload
from idp.security import bounded_json

REQUEST_OBJECT_ALGS = ["none", "RS256", "ES256"]


def _trusted_redirect(request: OAuth2Request, client: OAuthClient | None) -> str | None:
    uri = request.payload.redirect_uri
    return uri if client is not None and uri and client.check_redirect_uri(uri) else None


def _read_unverified(raw: str) -> tuple[dict, dict]:
    try:
        obj = jws.extract_compact(raw.encode("ascii"))
        claims = bounded_json.loads(obj.payload)
    except (JoseError, ValueError, UnicodeError):
        raise InvalidRequestObjectError("The request object is not a JWT.") from None
    if not isinstance(claims, dict):
        raise InvalidRequestObjectError("The request object payload is not a JSON object.")
    return obj.headers(), claims


def _verified_claims(raw: str, client: OAuthClient) -> dict:
    header, claims = _read_unverified(raw)
    alg = header.get("alg")
    if alg not in REQUEST_OBJECT_ALGS:
        raise InvalidRequestObjectError("The request object algorithm is not supported.")
    if alg == "none":
        if not raw.endswith("."):
            raise InvalidRequestObjectError("An unsigned request object must have an empty signature.")
        return claims
    try:
        keys = KeySet.import_key_set(fetch_client_jwks(client))
        return jwt.decode(raw, keys, algorithms=[alg]).claims
    except (JoseError, ValueError, KeyError, TypeError):
        raise InvalidRequestObjectError("The request object signature is not valid.") from None
    except InvalidClientError:
        raise InvalidRequestObjectError("The client has no usable keys to verify the request object.") from None


def _check_claims(claims: dict, request: OAuth2Request, client: OAuthClient, signed: bool) -> None:
    """OIDC Core 6.1 / 6.3: client_id and response_type agree; iss/aud/exp hold when present."""
    data = request.payload.data
    if claims.get("client_id", client.client_id) != client.client_id:
        raise InvalidRequestObjectError("The request object's client_id does not match.")
    if "response_type" in claims and claims["response_type"] != data.get("response_type"):
        raise InvalidRequestObjectError("The request object's response_type does not match.")
    if signed and claims.get("iss", client.client_id) != client.client_id:
        raise InvalidRequestObjectError("The request object's iss must be the client_id.")
    audience = claims.get("aud")
    if signed and audience is not None:
        audiences = audience if isinstance(audience, list) else [audience]
        if current_app.config["ISSUER"] not in audiences:
            raise InvalidRequestObjectError("The request object's aud must be this issuer.")
    if "exp" in claims and (not isinstance(claims["exp"], (int, float)) or claims["exp"] < utcnow().timestamp()):
        raise InvalidRequestObjectError("The request object has expired.")
    if "request" in claims or "request_uri" in claims:
        raise InvalidRequestObjectError("A request object must not contain request or request_uri.")


def _as_parameter(value) -> str:
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def resolve_request_object(request: OAuth2Request, client: OAuthClient | None) -> None:
    """Merge a `request` object into the request's parameters (its members win)."""
    data = request.payload.data
    try:
        if "request_uri" in data:
            raise RequestUriNotSupportedError()
        raw = data.get("request")
        if not raw:
            return
        if client is None:
            raise InvalidRequestError("Unknown client.")
        if len(raw) > REQUEST_OBJECT_LIMIT:
            raise InvalidRequestObjectError("The request object is too long.")
        claims = _verified_claims(raw, client)
        _check_claims(claims, request, client, signed=not raw.endswith("."))
    except InvalidRequestError as error:
        error.redirect_uri = None
        raise
    except (InvalidRequestObjectError, RequestUriNotSupportedError) as error:
        error.redirect_uri = _trusted_redirect(request, client)
        error.state = data.get("state")
        raise
    merged = {k: v for k, v in data.items() if k != "request"}
    merged.update({k: _as_parameter(v) for k, v in claims.items() if k not in ("iss", "aud", "exp", "iat", "nbf", "jti")})
    check_echoed_parameters(merged)  # its members are bounded as the query's are
    replace_payload(request, merged)
