"""Platform administration of user accounts: search, invite, change, disable, delete, end sessions.

The callers are platform admins (or platform-wide service accounts) through /api/v1/admin/users.
Functions take plain values and an `Actor`, raise AppError subclasses and only flush; every change is
audited with the actor and the changed field names (`admin.user.*`).

A disabled account (`is_active` false) signs in by no method and none of its tokens works: the
sign-in paths and token checks refuse it (accounts, federated_sign_in, sessions, the token models),
and disabling also ends its sessions and revokes its tokens at once, the same way `end_sessions_of`
does, so a relying party holding a token is told by back-channel logout and sees it revoked.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.exc import IntegrityError

from idp.errors import Conflict, NotFound, RateLimited
from idp.extensions import db
from idp.models import (FederatedIdentity, Membership, OAuthClient, Session, SessionStatus, TokenPurpose, Upstream,
                        User, utcnow)
from idp.services import accounts, audit, session_end
from idp.services import tokens as token_records
from idp.services.account_mail import recipient_can_receive, send_account_invitation_mail, send_reset_mail
from idp.services.account_tokens import issue_token

UPDATABLE_FIELDS = ("name", "disabled", "email_verified", "is_admin")
EMAIL_IN_USE = "The email address cannot be used for a new account."
DISABLED_ACCOUNT = "The account is disabled; enable it first."
MAIL_HELD_BACK = "Too many mails went to this address recently; try again later."


@dataclass(frozen=True)
class Actor:
    """Who acts: a platform admin's user id, or a platform-wide service account's client id."""

    user_id: str | None
    client_id: str | None = None

    def details(self, **details) -> dict:
        """Audit details, naming the service account when one acts (its rows have no actor user)."""
        return {**details, "actor_client_id": self.client_id} if self.client_id else details

    def is_(self, user: User) -> bool:
        return self.user_id is not None and self.user_id == user.id


@dataclass(frozen=True)
class UserFilters:
    """The list's search and filters; None means "any"."""

    q: str | None = None
    status: str | None = None  # "active" or "disabled"
    organization_id: str | None = None
    upstream: str | None = None  # slug of an upstream the user has an identity at
    created_since: datetime | None = None


def users_query(filters: UserFilters) -> Select:
    """The users matching `filters`, as one statement (EXISTS subqueries, no per-row query), for keyset
    pagination on (created_at, id)."""
    query = select(User)
    if filters.q:
        query = query.where(or_(User.email.icontains(filters.q, autoescape=True),
                                User.name.icontains(filters.q, autoescape=True)))
    if filters.status:
        query = query.where(User.is_active.is_(filters.status == "active"))
    if filters.organization_id:
        query = query.where(exists().where(Membership.user_id == User.id,
                                           Membership.organization_id == filters.organization_id))
    if filters.upstream:
        query = query.where(exists().where(FederatedIdentity.user_id == User.id,
                                           FederatedIdentity.upstream_id == Upstream.id,
                                           Upstream.slug == filters.upstream))
    if filters.created_since:
        query = query.where(User.created_at >= filters.created_since)
    return query


def get_user(user_id: str, *, for_update: bool = False) -> User:
    """The user `user_id`; 404 when there is none. `for_update` locks the row, so two writers holding
    one ETag cannot both pass If-Match."""
    user = db.session.get(User, user_id, with_for_update=for_update) if len(user_id) <= 36 else None
    if user is None:
        raise NotFound("User not found.")
    return user


def get_user_for_change(user_id: str, *, may_remove_an_admin: bool) -> User:
    """The user `user_id` locked FOR UPDATE (a PATCH or DELETE checks If-Match on the locked row).

    When the change may take an admin away (disabling, demoting, deleting), every active admin's row is
    locked first, in id order: concurrent changes that could each leave the platform without an admin
    then run one after the other, and see each other, without a deadlock.
    """
    if may_remove_an_admin:
        db.session.execute(select(User.id).where(User.is_admin.is_(True), User.is_active.is_(True))
                           .order_by(User.id).with_for_update())
    return get_user(user_id, for_update=True)


def removes_admin_rights(changes: dict) -> bool:
    """Whether a PATCH body would disable or demote its user (an admin, maybe)."""
    return changes.get("disabled") is True or changes.get("is_admin") is False


def create_user(actor: Actor, email: str, name: str) -> User:
    """Create an account without a password and mail its owner a single-use link to choose one
    (which also verifies the address); 409 when the address is taken."""
    email, name = accounts.normalise_email(email), accounts.clean_name(name)
    if accounts.find_user_by_email(email) is not None:
        raise Conflict(EMAIL_IN_USE)
    user = User(email=email, name=name, password_hash=None, email_verified=False)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError as exc:  # a concurrent creation won the race; the request rolls back
        raise Conflict(EMAIL_IN_USE) from exc
    send_account_invitation_mail(user, issue_token(user, TokenPurpose.SET_PASSWORD))
    audit.record("admin.user.created", actor_user_id=actor.user_id, target_type="user", target_id=user.id,
                 details=actor.details())
    return user


def update_user(actor: Actor, user: User, changes: dict) -> list[str]:
    """Apply a PATCH (name, disabled, email_verified, is_admin); the names of the fields that changed.

    Disabling ends the user's sessions and revokes their tokens. Nobody disables or demotes
    themselves, nor the last active platform admin (409).
    """
    changed = [name for name in UPDATABLE_FIELDS if name in changes and changes[name] != _current(user, name)]
    if ("disabled" in changed and changes["disabled"]) or ("is_admin" in changed and not changes["is_admin"]):
        _refuse_removing_an_admin(actor, user, field="disabled" if "disabled" in changed else "is_admin")
    for name in changed:
        _apply(user, name, changes[name])
    details = actor.details(changed=changed)
    if "disabled" in changed and changes["disabled"]:
        details.update(zip(("sessions_ended", "tokens_revoked"), _end_everything(user, reason="account_disabled")))
    db.session.flush()
    if changed:
        audit.record("admin.user.updated", actor_user_id=actor.user_id, target_type="user", target_id=user.id,
                     details=details)
    return changed


def _current(user: User, name: str):
    return not user.is_active if name == "disabled" else getattr(user, name)


def _apply(user: User, name: str, value) -> None:
    if name == "disabled":
        user.is_active = not value
    elif name == "name":
        user.name = accounts.clean_name(value)
    else:
        setattr(user, name, value)


def _refuse_removing_an_admin(actor: Actor, user: User, *, field: str) -> None:
    """409 when the change would leave the caller without their rights, or the platform without an admin."""
    if actor.is_(user):
        raise Conflict("You cannot disable your own account or remove your own platform admin rights.",
                       details={field: ["Not allowed on your own account."]})
    if user.is_admin and user.is_active and not _other_active_admins(user):
        raise Conflict("The platform needs at least one active platform admin.",
                       details={field: ["This is the last active platform admin."]})


def _other_active_admins(user: User) -> list[str]:
    # The rows are locked by get_user_for_change, so two admins demoting each other cannot both succeed.
    query = select(User.id).where(User.is_admin.is_(True), User.is_active.is_(True), User.id != user.id)
    return list(db.session.scalars(query))


def _end_everything(user: User, *, reason: str) -> tuple[int, int]:
    """End every session (relying parties told by back-channel logout) and revoke every token, offline
    refresh tokens whose session is long gone included; (sessions ended, tokens revoked)."""
    revoked = token_records.revoke_user_tokens(user)
    return session_end.end_all_sessions(user, reason=reason), revoked


def end_sessions_of(actor: Actor, user: User) -> tuple[int, int]:
    """End every browser and API session of `user` and revoke all their tokens; (sessions, tokens)."""
    ended, revoked = _end_everything(user, reason="revoked")
    audit.record("admin.user.sessions_revoked", actor_user_id=actor.user_id, target_type="user", target_id=user.id,
                 details=actor.details(sessions_ended=ended, tokens_revoked=revoked))
    return ended, revoked


def delete_user(actor: Actor, user: User) -> list[str]:
    """Delete the account like its owner would (accounts.remove_account: sessions end, relying parties
    are logged out); the ids of organizations deleted with it. Not yourself, not the last admin (409)."""
    if actor.is_(user):
        raise Conflict("Delete your own account from your account page, not here.")
    if user.is_admin and user.is_active and not _other_active_admins(user):
        raise Conflict("The platform needs at least one active platform admin.")
    user_id = user.id
    deleted = accounts.remove_account(user)
    audit.record("admin.user.deleted", actor_user_id=actor.user_id, target_type="user", target_id=user_id,
                 details=actor.details(organizations_deleted=deleted))
    return deleted


def send_password_reset(actor: Actor, user: User) -> None:
    """Mail `user` the usual single-use reset link; 409 for a disabled account, 429 over the recipient's
    mail limit (the link they may already have keeps working)."""
    if not user.is_active:
        raise Conflict(DISABLED_ACCOUNT)
    if not recipient_can_receive(user):
        raise RateLimited(MAIL_HELD_BACK)
    send_reset_mail(user, issue_token(user, TokenPurpose.RESET_PASSWORD))
    audit.record("admin.user.password_reset_sent", actor_user_id=actor.user_id, target_type="user",
                 target_id=user.id, details=actor.details())


def active_sessions_query(user: User) -> Select:
    """The user's live sessions (active and unexpired), for keyset pagination on (created_at, id)."""
    return select(Session).where(Session.user_id == user.id, Session.status == SessionStatus.ACTIVE.value,
                                 Session.expires_at > utcnow())


def clients_by_session(session_ids: list[str]) -> dict[str, list[OAuthClient]]:
    """The relying parties that got a code or a token under each of these sessions (a few queries in all)."""
    found: dict[str, list[OAuthClient]] = {sid: [] for sid in session_ids}
    for client, session_id in token_records.clients_of_sessions(session_ids):
        found[session_id].append(client)
    return found


@dataclass(frozen=True)
class LinkedIdentity:
    """One upstream identity of a user, as an admin sees it."""

    id: str
    upstream_id: str
    upstream_slug: str
    upstream_kind: str
    subject: str
    email: str | None
    linked_at: datetime
    last_signed_in_at: datetime


def sign_in_methods(user: User) -> dict:
    """How `user` can sign in: whether a password is set, and every linked upstream identity (one query)."""
    query = (select(FederatedIdentity, Upstream.slug, Upstream.kind)
             .join(Upstream, Upstream.id == FederatedIdentity.upstream_id)
             .where(FederatedIdentity.user_id == user.id)
             .order_by(FederatedIdentity.first_signed_in_at, FederatedIdentity.id))
    identities = [LinkedIdentity(row.id, row.upstream_id, slug, kind, row.subject, row.email,
                                 row.first_signed_in_at, row.last_signed_in_at)
                  for row, slug, kind in db.session.execute(query)]
    return {"password": user.password_hash is not None, "identities": identities}
