"""Users shaped by an upstream: just-in-time creation, reclaiming an unverified account, the profile
and organization membership refreshed at each sign-in, and the federated browser session itself."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.models import FederatedIdentity, Membership, PendingLink, Role, Session, Upstream, User, utcnow
from idp.services import audit, browser_sessions, federated_identities, session_end
from idp.services.upstream_identity import UpstreamIdentity

PROFILE_LIMITS = {"name": 200, "given_name": 100, "family_name": 100}
PICTURE_LIMIT = 500
ROLE_RANK = {Role.ADMIN.value: 1, Role.MEMBER.value: 2}


@dataclass(frozen=True)
class FederatedSignIn:
    """How a federated sign-in ended: `user` signed in (`session`), or linked without a new session
    (purpose "link"), or `pending_link` waits for the local account's owner to prove control."""

    user: User
    session: Session | None = None
    pending_link: PendingLink | None = None
    authorization_request_id: str | None = None


class ProvisioningRaced(Exception):
    """A concurrent sign-in created the identity or took the address first: decide again."""


def _clean(value: str | None, limit: int) -> str | None:
    """Upstream text as a profile value: control characters dropped (PostgreSQL refuses NUL), trimmed."""
    if not isinstance(value, str):
        return None
    text = "".join(ch for ch in value if unicodedata.category(ch) != "Cc").strip()
    return text[:limit] or None


def _picture(value: str | None) -> str | None:
    ok = isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) <= PICTURE_LIMIT
    return value if ok and not any(unicodedata.category(ch) == "Cc" for ch in value) else None


def _display_name(identity: UpstreamIdentity, email: str) -> str:
    joined = " ".join(part for part in (identity.given_name, identity.family_name) if part)
    return _clean(identity.name, 200) or _clean(joined, 200) or email.partition("@")[0][:200]


def apply_profile(user: User, identity: UpstreamIdentity) -> None:
    """Refresh name, given and family name and picture from what the upstream sent (absent ones kept)."""
    for field, limit in PROFILE_LIMITS.items():
        value = _clean(getattr(identity, field), limit)
        if value:
            setattr(user, field, value)
    picture = _picture(identity.picture)
    if picture:
        user.picture = picture


def provision_user(upstream: Upstream, identity: UpstreamIdentity, email: str) -> User:
    """Create the user just in time (no password; the address verified only if the upstream vouches for
    it) with its identity, in a SAVEPOINT: a concurrent first sign-in of the same identity or address
    makes the unique constraints fail here, and ProvisioningRaced tells the caller to decide again."""
    user = User(email=email, password_hash=None, name=_display_name(identity, email),
                email_verified=bool(identity.email_verified))
    apply_profile(user, identity)
    try:
        with db.session.begin_nested():
            db.session.add(user)
            db.session.flush()
            db.session.add(FederatedIdentity(upstream_id=upstream.id, user_id=user.id, subject=identity.subject,
                                             email=email))
            db.session.flush()
    except IntegrityError as exc:
        raise ProvisioningRaced() from exc
    audit.record("federation.user_provisioned", actor_user_id=user.id, target_type="user", target_id=user.id,
                 organization_id=upstream.organization_id,
                 details={"upstream": upstream.slug, "email_verified": user.email_verified})
    return user


def reclaim_unverified_account(user: User, upstream: Upstream, identity: UpstreamIdentity) -> None:
    """Give an account whose address was never verified to the upstream identity that proves the
    address, after neutralising everything its creator may still hold (pre-account-hijacking,
    Sudhodanan & Paverd, USENIX Security 2022): the password, every session and the identities
    linked to it; only then is the address marked verified and the identity linked."""
    user.password_hash = None
    user.password_changed_at = utcnow()
    ended = session_end.end_all_sessions(user, reason="account_reclaimed")
    unlinked = federated_identities.forget_unproven_identities(user, reason="account_reclaimed")
    user.email_verified = True
    db.session.flush()
    audit.record("federation.unverified_account_reclaimed", actor_user_id=user.id, target_type="user",
                 target_id=user.id, organization_id=upstream.organization_id,
                 details={"upstream": upstream.slug, "sessions_ended": ended, "identities_unlinked": unlinked})
    federated_identities.add_identity(user, upstream, identity)


def _mapped_role(upstream: Upstream, identity: UpstreamIdentity) -> str | None:
    """The best role the mapping gives the identity's groups; never owner (ownership is granted by owners)."""
    mapping = upstream.role_mapping or {}
    table = mapping.get("map") if isinstance(mapping.get("map"), dict) else {}
    values = list(identity.groups) or identity.claims.get(mapping.get("claim") or "groups") or []
    values = [values] if isinstance(values, str) else values
    roles = {table.get(v) for v in values if isinstance(v, str)} & set(ROLE_RANK)
    return min(roles, key=ROLE_RANK.get) if roles else None


def apply_organization(user: User, upstream: Upstream, identity: UpstreamIdentity) -> None:
    """An organization's upstream makes its users members (role member by default); with a role mapping,
    the role follows the upstream's groups at each sign-in, an owner staying owner."""
    if not upstream.organization_id:
        return
    query = select(Membership).where(Membership.organization_id == upstream.organization_id,
                                     Membership.user_id == user.id)
    membership = db.session.scalars(query).first()
    role = _mapped_role(upstream, identity)
    if membership is None:
        membership = Membership(organization_id=upstream.organization_id, user_id=user.id,
                                role=role or Role.MEMBER.value)
        db.session.add(membership)
    elif upstream.role_mapping and membership.role not in (Role.OWNER.value, role or Role.MEMBER.value):
        membership.role = role or Role.MEMBER.value
    else:
        return
    db.session.flush()
    audit.record("organization.member_federated", actor_user_id=user.id, target_type="user", target_id=user.id,
                 organization_id=upstream.organization_id, details={"upstream": upstream.slug, "role": membership.role})


def open_federated_session(user: User, upstream: Upstream, identity: UpstreamIdentity, *,
                           session: Session | None = None) -> Session:
    """Refresh the user from the upstream and sign the browser in with a fresh session (OIDC Core 2
    `amr` "fed"; the session's `idp` becomes the ID token's `idp` claim), or mark `session`, just opened
    by a password that proved the account, as federated too. Records `federation.sign_in`."""
    apply_profile(user, identity)
    apply_organization(user, upstream, identity)
    if session is None:
        session = browser_sessions.sign_in(user, amr=["fed"])
    else:
        session.amr = ["fed", *[method for method in (session.amr or []) if method != "fed"]]
    session.idp = upstream.slug
    session.upstream_session = identity.upstream_session
    user.last_login_at = utcnow()
    db.session.flush()
    audit.record("federation.sign_in", actor_user_id=user.id, target_type="session", target_id=session.id,
                 organization_id=upstream.organization_id, details={"upstream": upstream.slug})
    return session
