"""Back-channel logout deliveries owed to relying parties, kept until delivered or given up.

One row per (ended session, relying party with a backchannel_logout_uri), written in the same
transaction that ends the session, so a crash after the commit loses no logout. The logout token
itself is signed at each attempt (it is short-lived), from the subject and session id kept here.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models.base import IdMixin, UTCDateTime, utcnow
from idp.models.client import OAuthClient


class LogoutDeliveryStatus(str, enum.Enum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


class LogoutDelivery(IdMixin, db.Model):
    __tablename__ = "logout_deliveries"

    oauth_client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"), nullable=False,
                                                 index=True)
    # The user's OIDC `sub` and the ended session's id (`sid`), copied: the user may be deleted meanwhile.
    subject: Mapped[str] = mapped_column(String(64), nullable=False)
    session_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=LogoutDeliveryStatus.PENDING.value,
                                        index=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # When the next attempt may start; an attempt in flight pushes it past its own timeout (a lease).
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))

    client: Mapped[OAuthClient] = relationship()
