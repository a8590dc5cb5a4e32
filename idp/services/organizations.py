"""Organizations and memberships: who may see and change what, and the last-owner rule.

Rules: members read the organization and its member list; owners and admins manage members and
settings; only owners grant or remove ownership and delete the organization; an organization
always keeps at least one owner. Platform admins act as owners everywhere. Someone outside an
organization is told it does not exist. Every change is audited with its organization_id.

The actor is a user or a service account (a client acting with its own client_credentials token):
an organization's service account acts as an admin of that organization, a platform-wide one (no
organization) as a platform admin. Creating an organization makes a user its first owner, so the
last-owner rule holds from the start: a user creating one becomes its owner, unless a platform
admin names another (`owner_user_id` or `owner_email`); a platform-wide service account must name
one, being no user itself; an organization's service account cannot create organizations at all.

Conditional writes: a caller's `precondition(row)` runs once the row is loaded FOR UPDATE and the
actor's rights are checked (so a refusal is a 403/404, never a 412 that would skip its audit row).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from sqlalchemy import Select, select, update
from sqlalchemy.orm import selectinload

from idp.errors import Conflict, Forbidden, NotFound, ValidationError
from idp.extensions import db
from idp.models import Membership, OAuthClient, Organization, Role, User
from idp.services import accounts, audit
from idp.services.client_generation import client_changed
from idp.services.organization_access import OrganizationAccess, OrganizationActor

SLUG_MAX_LENGTH = 100


Precondition = Callable[[object], None]


def slugify(name: str) -> str:
    """A URL-safe slug from `name`: ASCII letters and digits joined by single hyphens."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[: SLUG_MAX_LENGTH - 10].rstrip("-") or "org"


def _slug_taken(slug: str, exclude_id: str | None = None) -> bool:
    query = select(Organization.id).where(Organization.slug == slug)
    if exclude_id:
        query = query.where(Organization.id != exclude_id)
    return db.session.scalars(query).first() is not None


def unique_slug(name: str) -> str:
    """slugify(name), with the lowest free numeric suffix when it is already taken."""
    base = slugify(name)
    query = select(Organization.slug).where((Organization.slug == base) | Organization.slug.like(f"{base}-%"))
    taken = set(db.session.scalars(query))
    if base not in taken:
        return base
    return next(f"{base}-{n}" for n in range(2, len(taken) + 3) if f"{base}-{n}" not in taken)


def _refuse_taken_slug(slug: str, exclude_id: str | None = None) -> None:
    if _slug_taken(slug, exclude_id):
        raise Conflict("This slug is already in use.", details={"slug": ["This slug is already in use."]})


def create_organization(actor: OrganizationActor, name: str, slug: str | None = None,
                        description: str | None = None, *, owner_email: str | None = None,
                        owner_user_id: str | None = None) -> tuple[Organization, User]:
    """Create an organization and its first owner; the slug is derived from the name unless given.

    The owner is the acting user, or the account `owner_email` / `owner_user_id` names: platform admins
    (users and platform-wide service accounts) may name anyone active, a platform-wide service account
    must (422 naming `owner_user_id` otherwise); anyone else only themself (403). An organization's
    service account may not create organizations (403). Returns the organization and its owner.
    """
    owner = _first_owner(actor, owner_email, owner_user_id)
    if slug:
        _refuse_taken_slug(slug)
    organization = Organization(name=name, slug=slug or unique_slug(name), description=description)
    db.session.add(organization)
    db.session.flush()
    db.session.add(Membership(organization_id=organization.id, user_id=owner.id, role=Role.OWNER.value))
    db.session.flush()
    details = {"slug": organization.slug} if owner.id == actor.user_id else \
        {"slug": organization.slug, "owner_user_id": owner.id}
    audit.record("organization.create", actor_user_id=actor.user_id, target_type="organization",
                 target_id=organization.id, organization_id=organization.id, details=actor.details(**details))
    return organization, owner


def _first_owner(actor: OrganizationActor, owner_email: str | None, owner_user_id: str | None) -> User:
    if actor.is_service_account and not actor.is_platform_admin:
        _refuse_creation(actor, "A service account of an organization cannot create organizations.")
    if owner_email is None and owner_user_id is None:
        if actor.user is None:
            message = "A service account must name the owner: give owner_user_id or owner_email."
            raise ValidationError(message, details={"owner_user_id": [message]})
        return actor.user
    if not actor.is_platform_admin and not _names(actor.user, owner_email, owner_user_id):
        # Refused before the lookup, so the answer never tells whether the named account exists.
        _refuse_creation(actor, "Only platform admins create an organization for someone else.")
    return _find_user(owner_email, owner_user_id, fields=("owner_email", "owner_user_id"))


def _names(user: User, email: str | None, user_id: str | None) -> bool:
    """Whether the email (any case) or id given is `user`'s own."""
    return accounts.canonical_email(email) == accounts.canonical_email(user.email) if email else user_id == user.id


def _refuse_creation(actor: OrganizationActor, message: str) -> None:
    audit.record_failure("organization.create", actor_user_id=actor.user_id, target_type="organization",
                         details=actor.details(reason=message))
    raise Forbidden(message)


def get_access(actor: OrganizationActor, organization_id: str, *, for_update: bool = False) -> OrganizationAccess:
    """The actor's standing in the organization; NotFound when it is missing or the actor is outside it.

    `for_update` locks the organization's row: for a conditional write of it, and before any membership
    write, so one organization's membership changes run one after another, each locking the
    organization first and its membership rows after (one order: no deadlock between two owners
    demoting each other, no duplicate member from two concurrent adds)."""
    query = select(Organization).where(Organization.id == organization_id)
    organization = db.session.scalars(_locked(query) if for_update else query).first()
    if organization is None:
        raise NotFound("Organization not found.")
    membership = _membership(organization_id, actor.user_id) if actor.user_id else None
    access = OrganizationAccess(actor, organization, membership)
    if access.role is None and not actor.is_platform_admin:
        raise NotFound("Organization not found.")
    return access


def _locked(query):
    """FOR UPDATE, refreshing a copy the session already holds: a writer that waited for the lock then
    sees the winner's row (and its new ETag), not the one it had read before."""
    return query.with_for_update().execution_options(populate_existing=True)


def _membership(organization_id: str, user_id: str) -> Membership | None:
    query = select(Membership).where(Membership.organization_id == organization_id, Membership.user_id == user_id)
    return db.session.scalars(query).first()


def _deny(access: OrganizationAccess, action: str, message: str) -> None:
    audit.record_failure(action, actor_user_id=access.actor.user_id, target_type="organization",
                         target_id=access.organization.id, organization_id=access.organization.id,
                         details=access.actor.details(reason=message))
    raise Forbidden(message)


def _require_manager(access: OrganizationAccess, action: str) -> None:
    if not access.can_manage:
        _deny(access, action, "Only owners and admins can do this.")


def _require_owner(access: OrganizationAccess, action: str, message: str = "Only owners can do this.") -> None:
    if not access.is_owner:
        _deny(access, action, message)


def update_organization(access: OrganizationAccess, changes: dict,
                        precondition: Precondition | None = None) -> Organization:
    """Change name, slug or description (owners and admins)."""
    _require_manager(access, "organization.update")
    organization = access.organization
    if precondition is not None:
        precondition(organization)
    if changes.get("slug") and changes["slug"] != organization.slug:
        _refuse_taken_slug(changes["slug"], exclude_id=organization.id)
    changed = sorted(key for key, value in changes.items() if getattr(organization, key) != value)
    for key in changed:
        setattr(organization, key, changes[key])
    db.session.flush()
    if changed:
        audit.record("organization.update", actor_user_id=access.actor.user_id, target_type="organization",
                     target_id=organization.id, organization_id=organization.id,
                     details=access.actor.details(fields=changed))
    return organization


def delete_organization(access: OrganizationAccess, precondition: Precondition | None = None) -> None:
    """Delete the organization and its memberships (owners only); its clients are detached and deactivated.

    Deactivated, not only detached: a client without an organization is a platform client, and a service
    account of the deleted organization must not wake up acting platform-wide. A platform admin may
    reactivate one deliberately (PATCH /api/v1/clients/<id>).
    """
    _require_owner(access, "organization.delete", "Only owners can delete the organization.")
    organization = access.organization
    if precondition is not None:
        precondition(organization)
    # Explicit, so SQLite without enforced foreign keys ends in the same state as PostgreSQL.
    detached = db.session.execute(
        update(OAuthClient).where(OAuthClient.organization_id == organization.id)
        .values(organization_id=None, is_active=False, version=OAuthClient.version + 1),
        execution_options={"synchronize_session": False}).rowcount
    audit.record("organization.delete", actor_user_id=access.actor.user_id, target_type="organization",
                 target_id=organization.id, organization_id=organization.id,
                 details=access.actor.details(slug=organization.slug, name=organization.name,
                                              clients_deactivated=detached))
    if detached:
        client_changed()  # cached copies on every worker are dropped once this commits
    for membership in list(organization.memberships):
        db.session.delete(membership)
    db.session.delete(organization)
    db.session.flush()


MEMBER_ORDER = (Membership.created_at, Membership.id)


def members_query(access: OrganizationAccess) -> Select:
    """The organization's memberships with their users, for a keyset page on MEMBER_ORDER (newest first)."""
    return (select(Membership).where(Membership.organization_id == access.organization.id)
            .options(selectinload(Membership.user)))


def _find_user(email: str | None, user_id: str | None, fields: tuple[str, str] = ("email", "user_id")) -> User:
    """The active account with this email (any case) or id; ValidationError naming `fields`' one given."""
    if email:
        user = accounts.find_user_by_email(email)  # stored canonical: the unique index answers
    else:
        user = db.session.get(User, user_id) if user_id else None
    if user is None or not user.is_active:
        field = fields[0] if email else fields[1]
        raise ValidationError("No active account matches.", details={field: ["No active account matches."]})
    return user


def add_member(access: OrganizationAccess, role: Role, *, email: str | None = None,
               user_id: str | None = None) -> Membership:
    """Add an existing user by email or id (owners and admins; only owners may add owners)."""
    _require_manager(access, "membership.add")
    if role is Role.OWNER:
        _require_owner(access, "membership.add", "Only owners can grant ownership.")
    user = _find_user(email, user_id)
    organization = access.organization
    if _membership(organization.id, user.id) is not None:
        raise Conflict("This user is already a member.", details={"user_id": ["Already a member."]})
    membership = Membership(organization_id=organization.id, user_id=user.id, role=role.value)
    db.session.add(membership)
    db.session.flush()
    audit.record("membership.add", actor_user_id=access.actor.user_id, target_type="user", target_id=user.id,
                 organization_id=organization.id, details=access.actor.details(role=role.value))
    return membership


def get_member(access: OrganizationAccess, user_id: str, *, for_update: bool = False) -> Membership:
    """One membership of the organization (any member may read it); NotFound for a non-member.

    `for_update` locks it, for a conditional write of it (after get_access(..., for_update=True))."""
    query = select(Membership).where(Membership.organization_id == access.organization.id,
                                     Membership.user_id == user_id)
    membership = db.session.scalars(_locked(query) if for_update else query).first()
    if membership is None:
        raise NotFound("Member not found.")
    return membership


def _refuse_last_owner(access: OrganizationAccess, target: Membership, message: str) -> None:
    """409 when `target` is the only owner. Owner rows are locked so two owners cannot both step down."""
    if target.role != Role.OWNER.value:
        return
    query = (select(Membership.id)
             .where(Membership.organization_id == access.organization.id, Membership.role == Role.OWNER.value)
             .with_for_update())
    if len(list(db.session.scalars(query))) <= 1:
        raise Conflict(message, details={"user_id": [message]})


def remove_member(access: OrganizationAccess, user_id: str, precondition: Precondition | None = None) -> None:
    """Remove a member: managers remove others (only owners remove owners); anyone may leave."""
    target = get_member(access, user_id, for_update=True)
    leaving = target.user_id == access.actor.user_id
    if not leaving:
        _require_manager(access, "membership.remove")
        if target.role == Role.OWNER.value:
            _require_owner(access, "membership.remove", "Only owners can remove an owner.")
    if precondition is not None:
        precondition(target)
    _refuse_last_owner(access, target, "The last owner cannot be removed; make someone else owner first.")
    audit.record("membership.remove", actor_user_id=access.actor.user_id, target_type="user",
                 target_id=target.user_id, organization_id=access.organization.id,
                 details=access.actor.details(role=target.role, left=leaving))
    db.session.delete(target)
    db.session.flush()


def change_role(access: OrganizationAccess, user_id: str, role: Role,
                precondition: Precondition | None = None) -> Membership:
    """Change a member's role: managers may; only owners grant ownership or change an owner's role."""
    _require_manager(access, "membership.role_change")
    target = get_member(access, user_id, for_update=True)
    if Role.OWNER in (role, Role(target.role)):
        _require_owner(access, "membership.role_change", "Only owners can grant or remove ownership.")
    if precondition is not None:
        precondition(target)
    if target.role == role.value:
        return target
    if role is not Role.OWNER:
        _refuse_last_owner(access, target, "The last owner cannot be demoted; make someone else owner first.")
    previous, target.role = target.role, role.value
    db.session.flush()
    audit.record("membership.role_change", actor_user_id=access.actor.user_id, target_type="user",
                 target_id=target.user_id, organization_id=access.organization.id,
                 details=access.actor.details(**{"from": previous, "to": role.value}))
    return target


def list_user_organizations(user: User) -> list[tuple[Organization, Role]]:
    """The organizations `user` belongs to, with their role in each, by name."""
    query = (select(Organization, Membership.role).join(Membership, Membership.organization_id == Organization.id)
             .where(Membership.user_id == user.id).order_by(Organization.name))
    return [(organization, Role(role)) for organization, role in db.session.execute(query)]
