"""Invitations to join an organization: invite an address with a role, list, resend, revoke, accept.

Rules: owners and admins invite (the surface checks the caller's role in the organization); only
owners and platform admins invite, or re-send an invitation of, an owner. An address already a member
is a 409, and so is an address with an open invitation: the caller resends or revokes that one, since
two live links for one address could carry two roles. The token goes only into the mail; the row keeps
its SHA-256. A resend replaces the token (the old link dies) and starts the lifetime again.

Accepting is one conditional UPDATE (still open and unexpired), so two racing accepts make one
membership. It needs the account whose address was invited, and the link was mailed to that address:
following it proves control of the mailbox exactly as the verification link does, so accepting also
marks the address verified (and, as that link does, drops upstream identities linked while it was not).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import Select, select, update

from idp.errors import BadRequest, Conflict, Forbidden, NotFound, RateLimited
from idp.extensions import db
from idp.models import Invitation, InvitationStatus, Membership, Organization, Role, User, utcnow
from idp.models.base import new_id
from idp.security.secrets import hash_token, new_token
from idp.services import accounts, audit, federated_identities
from idp.services.account_mail import Invitee, lifetime_text, recipient_can_receive, send_invitation_mail

INVALID_INVITATION = "This invitation link is no longer valid."
MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True)
class Inviter:
    """Who acts on an organization's invitations, as the surface authenticated them."""

    user_id: str | None
    client_id: str | None  # a service account (client_credentials token), recorded in audit details
    may_grant_ownership: bool  # owners and platform admins
    display_name: str | None = None  # named in the mail

    def details(self, **values) -> dict:
        return {**values, "actor_client_id": self.client_id} if self.client_id else values


def invite(organization: Organization, email: str, role: Role, inviter: Inviter) -> Invitation:
    """Invite `email` to `organization` as `role` and mail the link; 409 when the address is a member or has
    an open invitation, 403 for an ownership invitation by a non-owner, 429 when its mailbox is over
    RATELIMIT_MAIL_RECIPIENT (nothing is stored then)."""
    email = accounts.normalise_email(email)
    _require_may_grant(role, inviter, organization.id, "organization.invitation_created")
    _lock(organization)
    if _is_member(organization.id, email):
        raise Conflict("This address is already a member.", details={"email": ["Already a member."]})
    if _open_invitation(organization.id, email) is not None:
        message = "This address already has an open invitation: resend or revoke it."
        raise Conflict(message, details={"email": [message]})
    invitation = Invitation(id=new_id(), organization_id=organization.id, email=email, role=role.value,
                            invited_by=inviter.user_id, send_count=0)
    token = _issue(invitation)
    db.session.add(invitation)
    db.session.flush()
    _mail(invitation, token, organization, inviter)
    audit.record("organization.invitation_created", actor_user_id=inviter.user_id, target_type="invitation",
                 target_id=invitation.id, organization_id=organization.id, details=inviter.details(role=role.value))
    return invitation


def invitations_query(organization_id: str, status: InvitationStatus | None = None) -> Select:
    """The organization's invitations, optionally of one status, for keyset pagination."""
    query = select(Invitation).where(Invitation.organization_id == organization_id)
    if status is None:
        return query
    now = utcnow()
    unfinished = (Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
    conditions = {
        InvitationStatus.OPEN: (*unfinished, Invitation.expires_at > now),
        InvitationStatus.EXPIRED: (*unfinished, Invitation.expires_at <= now),
        InvitationStatus.ACCEPTED: (Invitation.accepted_at.is_not(None),),
        InvitationStatus.REVOKED: (Invitation.accepted_at.is_(None), Invitation.revoked_at.is_not(None)),
    }
    return query.where(*conditions[status])


def get_invitation(organization_id: str, invitation_id: str, *, for_update: bool = False) -> Invitation:
    """One invitation of the organization; NotFound for an id of another organization too."""
    query = select(Invitation).where(Invitation.id == invitation_id, Invitation.organization_id == organization_id)
    invitation = db.session.scalars(query.with_for_update() if for_update else query).first()
    if invitation is None:
        raise NotFound("Invitation not found.")
    return invitation


def resend(invitation: Invitation, inviter: Inviter) -> Invitation:
    """Mail a new link (the old one stops working) with a fresh lifetime; an expired invitation reopens.
    409 once accepted or revoked."""
    _require_may_grant(Role(invitation.role), inviter, invitation.organization_id, "organization.invitation_resent")
    if invitation.status() in (InvitationStatus.ACCEPTED, InvitationStatus.REVOKED):
        raise Conflict(f"This invitation was {invitation.status().value}; invite the address again instead.")
    token = _issue(invitation)
    db.session.flush()
    _mail(invitation, token, invitation.organization, inviter)
    audit.record("organization.invitation_resent", actor_user_id=inviter.user_id, target_type="invitation",
                 target_id=invitation.id, organization_id=invitation.organization_id,
                 details=inviter.details(changed=["expires_at", "last_sent_at", "send_count", "token_hash"]))
    return invitation


def revoke(invitation: Invitation, inviter: Inviter) -> Invitation:
    """Kill the link of an open or expired invitation; 409 once accepted or already revoked."""
    if invitation.status() in (InvitationStatus.ACCEPTED, InvitationStatus.REVOKED):
        raise Conflict(f"This invitation was already {invitation.status().value}.")
    invitation.revoked_at = utcnow()
    db.session.flush()
    audit.record("organization.invitation_revoked", actor_user_id=inviter.user_id, target_type="invitation",
                 target_id=invitation.id, organization_id=invitation.organization_id,
                 details=inviter.details(changed=["revoked_at"]))
    return invitation


def find_open(token: str | None) -> Invitation:
    """The open invitation behind a mailed token; BadRequest with one message for unknown, resent (old
    link), revoked, accepted and expired alike, so the page tells nobody which."""
    invitation = _find(token)
    if invitation is None or invitation.status() is not InvitationStatus.OPEN:
        raise BadRequest(INVALID_INVITATION)
    return invitation


def is_for(invitation: Invitation, user: User) -> bool:
    """Whether `user`'s address is the invited one."""
    return accounts.canonical_email(user.email) == invitation.email


def accept(token: str | None, user: User) -> tuple[Invitation, Membership | None]:
    """Use the invitation up for `user` (single use), make them a member with its role, and mark their
    address verified. Returns the membership made, or None when `user` was already a member (kept as is).
    BadRequest when the link is not open (or lost a race), Forbidden for an account of another address."""
    invitation = find_open(token)
    if not is_for(invitation, user):
        raise Forbidden("This invitation is for another email address.")
    claimed = db.session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.token_hash == invitation.token_hash,
               Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None), Invitation.expires_at > utcnow())
        .values(accepted_at=utcnow(), accepted_by=user.id),
        execution_options={"synchronize_session": False},
    )
    if claimed.rowcount != 1:
        raise BadRequest(INVALID_INVITATION)
    db.session.expire(invitation)
    _prove_address(user)
    membership = _join(invitation, user)
    audit.record("organization.invitation_accepted", actor_user_id=user.id, target_type="invitation",
                 target_id=invitation.id, organization_id=invitation.organization_id,
                 details={"role": invitation.role, "already_member": membership is None})
    return invitation, membership


def register_and_accept(token: str | None, name: str, password: str) -> tuple[User, Invitation]:
    """Create the invited address's password account (accounts.register, so its rules and 409 hold) and
    accept the invitation with it; the address counts as verified by the link."""
    invitation = find_open(token)
    user = accounts.register(invitation.email, password, name)
    invitation, _ = accept(token, user)
    return user, invitation


def _require_may_grant(role: Role, inviter: Inviter, organization_id: str, action: str) -> None:
    if role is Role.OWNER and not inviter.may_grant_ownership:
        message = "Only owners can invite owners."
        audit.record_failure(action, actor_user_id=inviter.user_id, target_type="organization",
                             target_id=organization_id, organization_id=organization_id,
                             details=inviter.details(reason=message))
        raise Forbidden(message)


def _lock(organization: Organization) -> None:
    """Serialise invitations of one organization, so two concurrent invites of one address make one."""
    db.session.execute(select(Organization.id).where(Organization.id == organization.id).with_for_update())


def _is_member(organization_id: str, email: str) -> bool:
    query = (select(Membership.id).join(User, User.id == Membership.user_id)
             .where(Membership.organization_id == organization_id, User.email == email))
    return db.session.scalars(query).first() is not None


def _open_invitation(organization_id: str, email: str) -> Invitation | None:
    query = invitations_query(organization_id, InvitationStatus.OPEN).where(Invitation.email == email)
    return db.session.scalars(query).first()


def _issue(invitation: Invitation) -> str:
    """A new token and a fresh lifetime for the invitation; 429 (nothing changed) while its mailbox is over
    RATELIMIT_MAIL_RECIPIENT, so a held-back mail never costs the invitee the link they already have."""
    if not recipient_can_receive(_invitee(invitation)):
        raise RateLimited("Too many mails went to this address recently; try again later.")
    token, now = new_token(), utcnow()
    invitation.token_hash = hash_token(token)
    invitation.expires_at = now + timedelta(seconds=current_app.config["INVITATION_LIFETIME"])
    invitation.last_sent_at = now
    invitation.send_count = (invitation.send_count or 0) + 1
    return token


def _mail(invitation: Invitation, token: str, organization: Organization, inviter: Inviter) -> None:
    send_invitation_mail(_invitee(invitation), token, organization=organization.name, role=invitation.role,
                         inviter=inviter.display_name,
                         lifetime=lifetime_text(current_app.config["INVITATION_LIFETIME"]))


def _invitee(invitation: Invitation) -> Invitee:
    return Invitee(email=invitation.email, id=invitation.id)


def _find(token: str | None) -> Invitation | None:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return db.session.scalars(select(Invitation).where(Invitation.token_hash == hash_token(token))).first()


def _prove_address(user: User) -> None:
    if user.email_verified:
        return
    federated_identities.forget_unproven_identities(user, reason="address_verified")
    user.email_verified = True
    audit.record("email.verify", actor_user_id=user.id, target_type="user", target_id=user.id,
                 details={"via": "invitation"})


def _join(invitation: Invitation, user: User) -> Membership | None:
    existing = db.session.scalars(select(Membership).where(Membership.organization_id == invitation.organization_id,
                                                          Membership.user_id == user.id)).first()
    if existing is not None:
        return None
    membership = Membership(organization_id=invitation.organization_id, user_id=user.id, role=invitation.role)
    db.session.add(membership)
    db.session.flush()
    return membership
