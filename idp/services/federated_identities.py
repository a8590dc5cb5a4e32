"""A user's identities at upstreams: (upstream, subject) -> user, never the e-mail address.

What the account page needs: the linked sign-in methods with first and last use, and unlinking one,
refused when it would leave the account no way to sign in.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from idp.errors import Conflict, NotFound
from idp.extensions import db
from idp.models import FederatedIdentity, PendingLink, Upstream, User, utcnow
from idp.services import audit
from idp.services.upstream_identity import UpstreamIdentity

LAST_METHOD_MESSAGE = ("This is the only way to sign in to your account. Set a password or link another "
                       "sign-in method first.")


@dataclass(frozen=True)
class LinkedIdentity:
    """One linked sign-in method as the account page shows it."""

    id: str
    upstream_slug: str
    upstream_name: str
    upstream_kind: str
    email: str | None
    first_signed_in_at: datetime
    last_signed_in_at: datetime


def find_identity(upstream: Upstream, subject: str) -> FederatedIdentity | None:
    """The identity (upstream, subject), or None."""
    query = select(FederatedIdentity).where(FederatedIdentity.upstream_id == upstream.id,
                                            FederatedIdentity.subject == subject)
    return db.session.scalars(query).first()


def add_identity(user: User, upstream: Upstream, identity: UpstreamIdentity) -> FederatedIdentity:
    """Link (upstream, identity.subject) to `user` and record `federation.identity_linked`."""
    now = utcnow()
    row = FederatedIdentity(upstream_id=upstream.id, upstream=upstream, user_id=user.id, user=user,
                            subject=identity.subject, email=_short(identity.email, 254),
                            first_signed_in_at=now, last_signed_in_at=now)
    db.session.add(row)
    db.session.flush()
    audit.record("federation.identity_linked", actor_user_id=user.id, target_type="user", target_id=user.id,
                 organization_id=upstream.organization_id, details={"upstream": upstream.slug})
    return row


def list_identities(user: User) -> list[LinkedIdentity]:
    """`user`'s linked sign-in methods, most recently used first."""
    query = (select(FederatedIdentity, Upstream).join(Upstream, Upstream.id == FederatedIdentity.upstream_id)
             .where(FederatedIdentity.user_id == user.id).order_by(FederatedIdentity.last_signed_in_at.desc()))
    return [LinkedIdentity(id=row.id, upstream_slug=upstream.slug, upstream_name=upstream.display_name,
                           upstream_kind=upstream.kind, email=row.email, first_signed_in_at=row.first_signed_in_at,
                           last_signed_in_at=row.last_signed_in_at)
            for row, upstream in db.session.execute(query)]


def _count(user: User) -> int:
    return db.session.scalar(select(func.count(FederatedIdentity.id)).where(FederatedIdentity.user_id == user.id))


def unlink_identity(user: User, identity_id: str, *, channel: str = "web") -> None:
    """Remove one of `user`'s linked identities; NotFound for anyone else's, Conflict when it is the
    account's last way to sign in (no password and no other identity). Records the unlink."""
    row = db.session.get(FederatedIdentity, identity_id) if identity_id else None
    if row is None or row.user_id != user.id:
        raise NotFound("This sign-in method is not linked to your account.")
    if not user.password_hash and _count(user) <= 1:
        audit.record_failure("federation.identity_unlinked", actor_user_id=user.id, target_type="user",
                             target_id=user.id, details={"upstream": row.upstream.slug, "reason": "last_method"})
        raise Conflict(LAST_METHOD_MESSAGE)
    slug, organization_id = row.upstream.slug, row.upstream.organization_id
    db.session.delete(row)
    db.session.flush()
    audit.record("federation.identity_unlinked", actor_user_id=user.id, target_type="user", target_id=user.id,
                 organization_id=organization_id, details={"upstream": slug, "channel": channel})


def forget_unproven_identities(user: User, *, reason: str) -> int:
    """Unlink every identity of `user` and drop its pending links; how many identities went.

    For the moment an address becomes verified by other means than an upstream (a mailed link, a
    password reset) or is reclaimed: every identity linked while it was unverified never proved it
    (pre-account-hijacking's "trojan identifier", Sudhodanan & Paverd, USENIX Security 2022).
    """
    rows = list(db.session.scalars(select(FederatedIdentity).where(FederatedIdentity.user_id == user.id)))
    for row in rows:
        audit.record("federation.identity_unlinked", actor_user_id=user.id, target_type="user", target_id=user.id,
                     details={"upstream": row.upstream.slug, "reason": reason})
        db.session.delete(row)
    db.session.execute(delete(PendingLink).where(PendingLink.user_id == user.id),
                       execution_options={"synchronize_session": False})
    db.session.flush()
    return len(rows)


def _short(value: str | None, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None
