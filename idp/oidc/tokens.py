"""Minting: RFC 9068 JWT access tokens, OIDC ID tokens, and the token response that carries them."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from authlib.oidc.core.util import create_half_hash
from flask import current_app
from joserfc.jws import JWSRegistry
from joserfc.jwt import convert_claims
from joserfc.util import json_b64encode, urlsafe_b64encode

from idp.extensions import db
from idp.models import OAuthClient, Session, User, utcnow
from idp.oidc.claims import id_token_user_claims
from idp.oidc.keys import KeyStore
from idp.oidc.resources import check_resource
from idp.oidc.scopes import scope_list
from idp.services import tokens as token_records
from idp.services.management_scopes import audience_for_scope
from idp.services.time_ordered_ids import time_ordered_id


@dataclass
class GrantContext:
    """What a token request carries forward from the original authorization."""

    grant_id: str | None = None
    session_id: str | None = None
    claims: dict | None = None
    auth_time: datetime | None = None
    acr: str | None = None
    amr: list | None = None


def key_store() -> KeyStore:
    """This app's signing keys."""
    return current_app.extensions["oidc"]["keys"]


def issuer() -> str:
    """The configured issuer (never the Host header)."""
    return current_app.config["ISSUER"]


class CompactSigner:
    """JWS compact serialization (RFC 7515 7.1) of JWT claims with one key and one header, as
    joserfc.jwt.encode makes it, with what does not change between tokens done once: the header
    checked by joserfc's registry and encoded, the algorithm resolved and the key checked against it."""

    def __init__(self, key, alg: str, kid: str, typ: str):
        self.key = key
        header = {"typ": typ, "alg": alg, "kid": kid}
        registry = JWSRegistry(algorithms=[alg])
        registry.check_header(header)
        self.algorithm = registry.get_alg(alg)
        self.algorithm.check_key(key)
        self.header_segment = json_b64encode(header)

    def sign(self, claims: dict) -> str:
        signing_input = self.header_segment + b"." + urlsafe_b64encode(convert_claims(claims))
        return (signing_input + b"." + urlsafe_b64encode(self.algorithm.sign(signing_input, self.key))).decode("ascii")


_signers: dict[tuple[str, str, str], CompactSigner] = {}


def sign(claims: dict, alg: str = "RS256", typ: str = "JWT") -> str:
    """Sign `claims` with the active key for `alg` (kid in the header)."""
    signing = key_store().signing_key(alg)
    if signing is None:
        raise RuntimeError(f"no active {alg} signing key in KEYS_DIR; run `flask keys generate --alg {alg}`")
    cache_key = (signing.kid, signing.alg, typ)
    signer = _signers.get(cache_key)
    if signer is None or signer.key is not signing.key:
        signer = _signers[cache_key] = CompactSigner(signing.key, signing.alg, signing.kid, typ)
    return signer.sign(claims)


def mint_access_token(client: OAuthClient, user: User | None, scope: str,
                      context: GrantContext) -> tuple[str, int, dict | None]:
    """An RFC 9068 access token (typ at+jwt); returns it, its lifetime and the row to record it by
    (services.tokens.access_token_row; None for a client-credentials token).

    RFC 9068 2.2 `aud`: API_AUDIENCE when the scope has a management scope (a token for the
    management API only), else the issuer, whose userinfo endpoint is the token's resource.
    """
    lifetime = access_token_lifetime(client)
    now = utcnow()
    jti = secrets.token_urlsafe(16)
    # User tokens get a row: logout, consent withdrawal and code replay revoke them by session or grant.
    # Client-credentials tokens have neither; they are recorded only if revoked (RFC 7009 deny-list).
    row = None if user is None else token_records.access_token_row(
        client, user, jti, scope, now + timedelta(seconds=lifetime), session_id=context.session_id,
        grant_id=context.grant_id, claims=context.claims)
    return signed_access_token(client, user, scope, context, jti, now, lifetime), lifetime, row


def access_token_lifetime(client: OAuthClient) -> int:
    return client.access_token_lifetime or current_app.config["ACCESS_TOKEN_LIFETIME"]


def signed_access_token(client: OAuthClient, user: User | None, scope: str, context: GrantContext, jti: str,
                        now: datetime, lifetime: int) -> str:
    """The RFC 9068 access token `jti` issued at `now` (mint_access_token)."""
    issued_at = int(now.timestamp())
    claims = {"iss": issuer(), "sub": user.subject if user else client.client_id, "aud": audience_for_scope(scope),
              "client_id": client.client_id, "scope": scope, "iat": issued_at, "exp": issued_at + lifetime,
              "jti": jti}
    if context.auth_time:
        claims["auth_time"] = int(context.auth_time.timestamp())
    if context.session_id:
        claims["sid"] = context.session_id
    return sign(claims, "RS256", typ="at+jwt")


def mint_id_token(client: OAuthClient, user: User, scope: str, context: GrantContext, nonce: str | None,
                  access_token: str | None) -> str:
    """An ID token (OIDC Core 2, 3.1.3.6, 12.2) in the client's id_token_signed_response_alg,
    with the user claims of the granted `scope` (idp.oidc.claims.id_token_user_claims)."""
    alg = client.id_token_signed_response_alg or "RS256"
    now = int(utcnow().timestamp())
    claims = id_token_user_claims(user, scope, context.claims, minimal=client.minimal_id_token)
    claims.update({"iss": issuer(), "aud": client.client_id, "azp": client.client_id, "iat": now,
                   "exp": now + current_app.config["ID_TOKEN_LIFETIME"]})
    # acr "0" (OIDC Core 2) when the sign-in claimed no assurance level: the truthful default.
    optional = {"auth_time": int(context.auth_time.timestamp()) if context.auth_time else None,
                "nonce": nonce, "acr": context.acr or "0", "amr": context.amr, "sid": context.session_id,
                "idp": federated_idp(context)}
    claims.update({k: v for k, v in optional.items() if v})
    if access_token:
        claims["at_hash"] = create_half_hash(access_token, alg).decode("ascii")
    return sign(claims, alg)


def federated_idp(context: GrantContext) -> str | None:
    """The upstream's slug when the sign-in was federated (amr "fed"): the `idp` claim, as Auth0 and
    Azure AD B2C name it. Only federated sign-ins cost the session lookup."""
    if not context.session_id or "fed" not in (context.amr or ()):
        return None
    session = db.session.get(Session, context.session_id)
    return session.idp if session is not None else None


def refresh_allowed(client: OAuthClient, scope: str) -> bool:
    """Refresh tokens only for clients allowed the grant, with offline_access or by client policy."""
    if not client.check_grant_type("refresh_token"):
        return False
    return "offline_access" in scope_list(scope) or client.refresh_without_offline_access


@dataclass(frozen=True)
class PlannedTokens:
    """A grant's new access token and refresh token, chosen before the statement that consumes its code
    or old refresh token writes their rows (services.tokens.redeem_code_issuing,
    redeem_refresh_token_issuing): what each row has of its own, and what the response needs of them.
    No refresh token (None) for a client that may not refresh."""

    jti: str
    issued_at: datetime
    lifetime: int
    refresh_token: str | None
    access_row: dict
    refresh_row: dict | None


def plan_tokens(client: OAuthClient, with_refresh_token: bool = True) -> PlannedTokens:
    """The tokens a code exchange or a refresh by `client` will issue (their rows' own columns as the
    rows made by issue_tokens have them)."""
    now, lifetime, jti = utcnow(), access_token_lifetime(client), secrets.token_urlsafe(16)
    refresh_token, refresh_row = token_records.new_refresh_token(client, now) if with_refresh_token else (None, None)
    access_row = {"id": time_ordered_id(), "jti": jti, "issued_at": now,
                  "expires_at": now + timedelta(seconds=lifetime)}
    return PlannedTokens(jti, now, lifetime, refresh_token, access_row, refresh_row)


def plan_refresh(client: OAuthClient) -> PlannedTokens:
    """The tokens a refresh by `client` will issue: always a new refresh token (rotation)."""
    return plan_tokens(client)


def issue_tokens(client: OAuthClient, user: User | None, scope: str, context: GrantContext,
                 include_refresh_token: bool, planned: PlannedTokens | None = None) -> dict:
    """The RFC 6749 5.1 token response body (without id_token), with rows written for each token;
    or, with `planned` (a grant whose redemption wrote the rows), the body of those tokens.

    Every grant mints here, so the token request's `resource` (RFC 8707 2) is checked here against
    the audience the granted scope gets; a refusal rolls back whatever the grant already did.
    """
    check_resource(scope)
    if planned is not None:
        access_token = signed_access_token(client, user, scope, context, planned.jti, planned.issued_at,
                                           planned.lifetime)
        body = {"access_token": access_token, "token_type": "Bearer", "expires_in": planned.lifetime, "scope": scope}
        if include_refresh_token:
            body["refresh_token"] = planned.refresh_token
        return body
    access_token, lifetime, access_row = mint_access_token(client, user, scope, context)
    body = {"access_token": access_token, "token_type": "Bearer", "expires_in": lifetime, "scope": scope}
    if access_row is None:
        return body
    refresh_row = None
    if include_refresh_token:
        body["refresh_token"], refresh_row = token_records.refresh_token_row(
            client, user, scope, session_id=context.session_id, grant_id=context.grant_id, claims=context.claims,
            auth_time=context.auth_time, acr=context.acr, amr=context.amr)
    token_records.record_issued_tokens(access_row, refresh_row)
    return body
