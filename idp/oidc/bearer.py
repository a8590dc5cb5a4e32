"""Verifying access tokens this issuer minted (RFC 9068 4), for userinfo, introspection and revocation."""
from __future__ import annotations

from flask import current_app
from joserfc import jwt
from joserfc.errors import JoseError

from idp.models import AccessToken
from idp.oidc.clients import query_client
from idp.services import tokens as token_records

ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")


def access_token_claims(token: str) -> dict | None:
    """Claims of an unexpired JWT access token signed by a published key of this issuer, or None."""
    if not isinstance(token, str) or token.count(".") != 2:
        return None
    keys = current_app.extensions["oidc"]["keys"]
    try:
        decoded = jwt.decode(token, keys.verification_keyset(), algorithms=["RS256", "ES256"])
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": current_app.config["ISSUER"]},
                              exp={"essential": True}, iat={"essential": True},
                              jti={"essential": True}).validate(decoded.claims)
    except (JoseError, ValueError):
        return None
    if str(decoded.header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
        return None
    return decoded.claims


def find_access_token(token: str) -> AccessToken | None:
    """The record behind a verified access token.

    User tokens always have a row. A client-credentials token has one only once revoked; until then a
    transient record stands in for it (see idp.oidc.tokens.mint_access_token).
    """
    claims = access_token_claims(token)
    if claims is None:
        return None
    row = token_records.find_access_token(claims["jti"])
    if row is not None or "sid" in claims or claims.get("sub") != claims.get("client_id"):
        return row
    client = query_client(claims.get("client_id"))
    return token_records.unrecorded_machine_token(claims, client) if client is not None else None
