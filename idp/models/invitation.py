"""Invitations to join an organization, sent by mail to an address that may have no account yet."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models.base import IdMixin, UTCDateTime, utcnow
from idp.models.organization import Organization


class InvitationStatus(str, enum.Enum):
    OPEN = "open"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"


class Invitation(IdMixin, db.Model):
    __tablename__ = "invitations"
    __table_args__ = (
        # Newest-first keyset pagination of one organization's invitations.
        Index("ix_invitations_organization_created", "organization_id", "created_at", "id"),
        Index("ix_invitations_organization_email", "organization_id", "email"),
    )

    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False)
    # Canonical form (idp.services.accounts.canonical_email), compared with the accepting user's address.
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    # SHA-256 of the mailed token (security.secrets.hash_token); a resend replaces it, killing the old link.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    invited_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    send_count: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    organization: Mapped[Organization] = relationship()

    def status(self, now: datetime | None = None) -> InvitationStatus:
        """Accepted and revoked are final; an invitation past expires_at is expired, else open."""
        if self.accepted_at is not None:
            return InvitationStatus.ACCEPTED
        if self.revoked_at is not None:
            return InvitationStatus.REVOKED
        if self.expires_at <= (now or utcnow()):
            return InvitationStatus.EXPIRED
        return InvitationStatus.OPEN
