"""Bearer authentication for the API: `Authorization: Bearer <session token>` for a user's own
account, and for the management API also a JWT access token this issuer minted (RFC 9068)."""
from __future__ import annotations

from functools import wraps

from flask import g, request

from idp.api.principal import Principal
from idp.errors import Forbidden, NotFound, Unauthorized
from idp.extensions import db
from idp.models import Organization, Session, SessionKind, User
from idp.services import access_tokens, sessions

BEARER_SECURITY = [{"bearerAuth": []}]
REALM = "authy2"
CHALLENGE = f'Bearer realm="{REALM}"'
INVALID_TOKEN_CHALLENGE = f'Bearer realm="{REALM}", error="invalid_token"'


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def login_required(view):
    """Authenticate the API session token, slide its idle window, and expose g.user / g.session."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        token = bearer_token()
        if token is None:
            raise Unauthorized("A bearer token is required.", headers={"WWW-Authenticate": CHALLENGE})
        try:
            session = sessions.authenticate(token, kind=SessionKind.API)
        except Unauthorized as exc:
            exc.headers = {"WWW-Authenticate": INVALID_TOKEN_CHALLENGE}
            raise
        g.session, g.user = session, session.user
        return view(*args, **kwargs)

    return wrapper


def current_user() -> User:
    return g.user


def current_session() -> Session:
    return g.session


# -- the management API: API sessions and access tokens, with scopes --
def authenticate_principal(token: str) -> Principal:
    """The principal behind a bearer value: an API session first, else a JWT access token.

    RFC 9068 4: the token must verify against this issuer's keys, name API_AUDIENCE in `aud`, be
    unexpired and not revoked, and its client and end user must still be active. Its scopes are cut
    to what its client is granted now, so a scope a platform admin withdraws stops working at once.
    RFC 6750 3.1: anything else is a 401 invalid_token.
    """
    session = sessions.find_live_session(token, kind=SessionKind.API)
    if session is not None:
        sessions.touch(session)
        g.session, g.user = session, session.user
        return Principal.of_session(session.user)
    found = access_tokens.management_access_token(token)
    if found is None:
        raise Unauthorized("The bearer token is invalid, expired or revoked.",
                           headers={"WWW-Authenticate": INVALID_TOKEN_CHALLENGE})
    row, _claims = found
    scopes = frozenset(row.scope.split()) & frozenset(row.client.scopes)
    if row.user is not None:
        return Principal.of_user_token(row.user, scopes)
    return Principal.of_service_account(row.client, scopes)


def management_required(scope: str):
    """Decorator for management operations: authenticate (API session or access token), set
    g.principal; 401 (RFC 6750 3.1 challenge) without valid credentials, 403 insufficient_scope when
    a token lacks `scope`. What the principal may do with a given resource is the view's to check
    (require_platform_admin, require_organization_manager)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            token = bearer_token()
            if token is None:
                raise Unauthorized("A bearer token is required.", headers={"WWW-Authenticate": CHALLENGE})
            principal = authenticate_principal(token)
            g.principal = principal
            if not principal.has_scope(scope):
                raise Forbidden(f"The access token lacks the scope '{scope}'.", headers={
                    "WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope", scope="{scope}"'})
            return view(*args, **kwargs)

        return wrapper

    return decorate


def current_principal() -> Principal:
    return g.principal


def require_platform_admin(principal: Principal) -> None:
    """Platform admins and platform-wide service accounts only."""
    if not principal.is_platform_admin:
        raise Forbidden("Platform admin rights are required.")


def platform_admin_management(scope: str):
    """Decorator for platform-admin-only management operations: management_required(scope), then
    require_platform_admin (a platform-wide service account holding `scope` passes)."""

    def decorate(view):
        @management_required(scope)
        @wraps(view)
        def wrapper(*args, **kwargs):
            require_platform_admin(current_principal())
            return view(*args, **kwargs)

        return wrapper

    return decorate


def require_organization_manager(principal: Principal, organization_id: str) -> Organization:
    """The organization, when the principal is an owner or admin of it (Role.manages; platform admins
    always are).

    NotFound when it does not exist or the principal has no relation to it: a refusal never tells
    whether another organization's resource exists. Forbidden when related but the role falls short.
    """
    organization = db.session.get(Organization, organization_id) if isinstance(organization_id, str) else None
    if organization is None:
        raise NotFound("Organization not found.")
    if principal.is_platform_admin:
        return organization
    role = principal.organization_role(organization_id)
    if role is None:
        raise NotFound("Organization not found.")
    if not role.manages:
        raise Forbidden("The caller's role in this organization does not allow this.")
    return organization
