"""The scopes this provider knows and what each releases."""
from __future__ import annotations

# OIDC Core 5.4 standard scopes, plus `organizations` (memberships: id, name, role).
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": ("sub",),
    "profile": ("name", "given_name", "family_name", "picture", "locale", "zoneinfo", "updated_at"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "address": ("address",),
    "organizations": ("organizations",),
    "offline_access": (),
}

SUPPORTED_SCOPES: tuple[str, ...] = tuple(SCOPE_CLAIMS)

def scope_list(scope: str | None) -> list[str]:
    """The scope string as an ordered list without duplicates."""
    seen: list[str] = []
    for item in (scope or "").split():
        if item not in seen:
            seen.append(item)
    return seen


def claims_for_scopes(scopes: list[str]) -> set[str]:
    """Every claim name the given scopes release."""
    return {claim for scope in scopes for claim in SCOPE_CLAIMS.get(scope, ())}


def all_claims() -> list[str]:
    """Every claim this provider can return (discovery `claims_supported`)."""
    return sorted({claim for claims in SCOPE_CLAIMS.values() for claim in claims}
                  | {"iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "at_hash", "sid"})
