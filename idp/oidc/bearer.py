"""Verifying access tokens this issuer minted (RFC 9068 4), for userinfo, introspection and revocation.

The verification itself lives in idp.services.access_tokens (the management API uses it too); the
provider's endpoints look machine tokens' clients up through the per-process client cache.
"""
from __future__ import annotations

from flask import current_app

from idp.models import AccessToken
from idp.oidc.clients import query_client
from idp.services import access_tokens
from idp.services.access_tokens import ACCESS_TOKEN_TYPES, access_token_claims

__all__ = ["ACCESS_TOKEN_TYPES", "access_token_claims", "find_access_token", "find_issuer_access_token"]


def find_access_token(token: str) -> AccessToken | None:
    """The record behind a verified access token (see idp.services.access_tokens.record_for)."""
    return access_tokens.find_access_token(token, lookup_client=query_client)


def find_issuer_access_token(token: str) -> AccessToken | None:
    """The record behind a verified access token whose audience is this issuer (UserInfo, its own
    resource). RFC 9068 4: a token minted for another audience (API_AUDIENCE) is refused."""
    claims = access_token_claims(token)
    if claims is None or not access_tokens.audience_includes(claims, current_app.config["ISSUER"]):
        return None
    return access_tokens.record_for(claims, lookup_client=query_client)
