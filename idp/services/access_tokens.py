"""Verifying the JWT access tokens this issuer minted (RFC 9068 4), for every surface that accepts them:
userinfo, introspection and revocation (idp.oidc), and the management API (idp.api).

The signing keys are the oidc package's KeyStore, read from app.extensions like any other
per-app resource, so this module depends on no surface.
"""
from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import select

from idp.extensions import db
from idp.models import AccessToken, OAuthClient
from idp.services import tokens as token_records
from idp.services.management_scopes import api_audience

ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")
VERIFICATION_ALGS = ["RS256", "ES256"]

ClientLookup = Callable[[str | None], OAuthClient | None]


def access_token_claims(token: str) -> dict | None:
    """Claims of an unexpired JWT access token signed by a published key of this issuer, or None
    (RFC 9068 4: typ at+jwt, iss, exp, iat and jti present). The audience is the caller's to check."""
    if not isinstance(token, str) or token.count(".") != 2:
        return None
    keys = current_app.extensions["oidc"]["keys"]
    try:
        decoded = jwt.decode(token, keys.verification_keyset(), algorithms=VERIFICATION_ALGS)
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": current_app.config["ISSUER"]},
                              exp={"essential": True}, iat={"essential": True},
                              jti={"essential": True}).validate(decoded.claims)
    except (JoseError, ValueError):
        return None
    if str(decoded.header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
        return None
    return decoded.claims


def active_client(client_id: str | None) -> OAuthClient | None:
    """The active client with this client_id, read from the database (no cache: a deactivation
    counts at once), or None."""
    if not client_id or not isinstance(client_id, str):
        return None
    client = db.session.scalars(select(OAuthClient).where(OAuthClient.client_id == client_id)).first()
    return client if client is not None and client.is_active else None


def is_machine_token(claims: dict) -> bool:
    """A client_credentials token: its subject is the client itself and no sign-in session is behind it."""
    return "sid" not in claims and claims.get("sub") == claims.get("client_id")


def record_for(claims: dict, lookup_client: ClientLookup = active_client) -> AccessToken | None:
    """The record behind verified `claims`.

    User tokens always have a row. A client-credentials token has one only once revoked; until then a
    transient record stands in for it (see idp.oidc.tokens.mint_access_token), and only while its
    client is active.
    """
    row = token_records.find_access_token(claims["jti"])
    if row is not None or not is_machine_token(claims):
        return row
    client = lookup_client(claims.get("client_id"))
    return token_records.unrecorded_machine_token(claims, client) if client is not None else None


def find_access_token(token: str, lookup_client: ClientLookup = active_client) -> AccessToken | None:
    """The record behind a verified access token (of any audience), or None."""
    claims = access_token_claims(token)
    return record_for(claims, lookup_client) if claims is not None else None


def audience_includes(claims: dict, audience: str) -> bool:
    """RFC 9068 4 / RFC 7519 4.1.3: `aud` (a string or an array) names `audience`."""
    aud = claims.get("aud")
    return aud == audience or (isinstance(aud, list) and audience in aud)


def is_usable(row: AccessToken) -> bool:
    """Unexpired, not revoked (RFC 7009, or its sign-in session ended on purpose), its client active,
    and its end user, when it has one, not disabled."""
    if row.is_expired() or row.is_revoked():
        return False
    if row.client is None or not row.client.is_active:
        return False
    return row.user_id is None or (row.user is not None and row.user.is_active)


def management_access_token(token: str) -> tuple[AccessToken, dict] | None:
    """The record and claims of an access token the management API accepts, or None.

    RFC 9068 4: a resource server refuses a token whose `aud` does not name it; here that is
    API_AUDIENCE, which only tokens granted a management scope carry.
    """
    claims = access_token_claims(token)
    if claims is None or not audience_includes(claims, api_audience()):
        return None
    row = record_for(claims)
    if row is None or not is_usable(row):
        return None
    return row, claims
