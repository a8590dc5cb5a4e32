"""The management API's scopes and its audience (RFC 9068 2.2, RFC 8707 2).

A token that carries any management scope is for the management API alone: its `aud` is
API_AUDIENCE, never the issuer, so a relying party that leaks its userinfo token cannot call the API
with it and an API token is not mistaken for one of the issuer's own. A client's registered `scope`
may hold these only when a platform admin granted them; the token endpoint then grants no more than
that registration.
"""
from __future__ import annotations

from collections.abc import Iterable

from flask import current_app

MANAGE_CLIENTS = "manage:clients"
MANAGE_USERS = "manage:users"
MANAGE_ORGANIZATIONS = "manage:organizations"
MANAGE_UPSTREAMS = "manage:upstreams"
READ_AUDIT = "read:audit"
MANAGE_KEYS = "manage:keys"

MANAGEMENT_SCOPES: frozenset[str] = frozenset(
    {MANAGE_CLIENTS, MANAGE_USERS, MANAGE_ORGANIZATIONS, MANAGE_UPSTREAMS, READ_AUDIT, MANAGE_KEYS})


def is_management_scope(scope: str) -> bool:
    return scope in MANAGEMENT_SCOPES


def management_scopes_in(scopes: Iterable[str] | str | None) -> list[str]:
    """The management scopes among `scopes` (a list or a space-separated string), in their order."""
    items = scopes.split() if isinstance(scopes, str) else list(scopes or ())
    return [scope for scope in items if scope in MANAGEMENT_SCOPES]


def api_audience() -> str:
    """The management API's resource identifier: the `aud` of its tokens (RFC 9068 2.2); by default
    `<ISSUER>/api`, derived when asked so that it follows the issuer the app serves."""
    return current_app.config.get("API_AUDIENCE") or issuer() + "/api"


def issuer() -> str:
    return current_app.config["ISSUER"]


def audience_for_scope(scope: str | None) -> str:
    """RFC 9068 2.2 `aud`: API_AUDIENCE when the granted scope has a management scope, else the issuer
    (the userinfo endpoint is the issuer's own resource)."""
    return api_audience() if management_scopes_in(scope) else issuer()


def known_resources() -> tuple[str, ...]:
    """The resource indicators (RFC 8707 2) this server issues tokens for."""
    return api_audience(), issuer()
