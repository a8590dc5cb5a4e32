"""User claims: what scopes and the `claims` request parameter (OIDC Core 5.5) release."""
from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidRequestError
from sqlalchemy import inspect, select

from idp.extensions import db
from idp.models import Membership, User
from idp.oidc.scopes import SCOPE_CLAIMS, claims_for_scopes, scope_list
from idp.security import bounded_json

CLAIMS_TARGETS = ("userinfo", "id_token")


def parse_claims_parameter(raw: str | None) -> dict | None:
    """The `claims` parameter as a dict with only `userinfo`/`id_token` members (OIDC Core 5.5)."""
    if not raw:
        return None
    try:
        value = bounded_json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise InvalidRequestError("The 'claims' parameter is not valid JSON.") from None
    if not isinstance(value, dict) or any(not isinstance(value.get(t, {}), (dict, type(None))) for t in CLAIMS_TARGETS):
        raise InvalidRequestError("The 'claims' parameter must be a JSON object of objects.")
    return {target: dict(value.get(target) or {}) for target in CLAIMS_TARGETS if value.get(target) is not None}


def _known_claim(name: str) -> bool:
    return any(name in claims for claims in SCOPE_CLAIMS.values())


def requested_claim_names(claims: dict | None, target: str) -> set[str]:
    """Claim names requested for `target` through the claims parameter (essential or voluntary)."""
    return {name for name in ((claims or {}).get(target) or {}) if _known_claim(name)}


def _organizations(user: User) -> list[dict]:
    rows = db.session.scalars(select(Membership).where(Membership.user_id == user.id)).all()
    return [{"id": m.organization_id, "name": m.organization.name, "role": m.role} for m in rows]


def _claim_value(user: User, name: str):
    if name == "sub":
        return user.subject
    if name == "updated_at":
        return int(user.updated_at.timestamp()) if user.updated_at else None
    if name == "organizations":
        return _organizations(user)
    if name == "name":
        return user.name or None
    if name in ("phone_number_verified",):
        return user.phone_number_verified if user.phone_number else None
    return getattr(user, name, None)


def _whole_user(user):
    """The user with every claim column loaded: a code exchange or refresh reads them with its code or
    token (services.tokens.TokenUser); an ORM User with unloaded columns loads them."""
    if not isinstance(user, User):
        return user
    unloaded = inspect(user).unloaded
    if unloaded:
        db.session.refresh(user, attribute_names=list(unloaded))
    return user


def user_claims(user, names: set[str]) -> dict:
    """The values of `names` that `user` (a User or a TokenUser) has; absent values are left out, never null."""
    claims = {"sub": user.subject}
    if names - {"sub"}:
        user = _whole_user(user)
    for name in sorted(names):
        value = _claim_value(user, name)
        if value is not None and value != "":
            claims[name] = value
    return claims


def userinfo_claims(user: User, scope: str, claims_request: dict | None) -> dict:
    """UserInfo response: scope claims plus claims.userinfo requests (OIDC Core 5.3.2, 5.5)."""
    names = claims_for_scopes(scope_list(scope)) | requested_claim_names(claims_request, "userinfo")
    return user_claims(user, names)


def id_token_user_claims(user: User, scope: str, claims_request: dict | None, minimal: bool = False) -> dict:
    """ID token user claims: `sub`, the granted scopes' claims, and what claims.id_token asks for
    (OIDC Core 5.4, 5.5).

    OIDC Core 5.4 lets the scope claims go to UserInfo alone when an access token is issued, but most
    relying-party libraries read the user from the ID token (as Google, Keycloak and Auth0 fill it);
    so they are in it unless the client's policy (`minimal_id_token`) keeps it to what was requested.
    """
    names = requested_claim_names(claims_request, "id_token")
    if not minimal:
        names |= claims_for_scopes(scope_list(scope))
    return user_claims(user, names)
