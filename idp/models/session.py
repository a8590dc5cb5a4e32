"""Sessions: database-backed bearer tokens (API) and the browser SSO cookie, one model."""
from __future__ import annotations

import enum
from datetime import datetime, timedelta

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models.base import IdMixin, UTCDateTime, utcnow
from idp.models.user import User


class SessionStatus(str, enum.Enum):
    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


def is_live(status: str | None, expires_at: datetime | None, now: datetime) -> bool:
    """A session is live while ACTIVE and before its (idle or absolute) expiry."""
    return status == SessionStatus.ACTIVE.value and expires_at is not None and now < expires_at


class SessionKind(str, enum.Enum):
    API = "api"
    BROWSER = "browser"


class Session(IdMixin, db.Model):
    __tablename__ = "sessions"
    # The cleanup job's batches, oldest first: marking (status ACTIVE, expires_at passed) and deleting
    # (each status, expires_at past the retention) are range scans of this one index (migration 0011).
    __table_args__ = (Index("ix_sessions_status_expires_at", "status", "expires_at"),)

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default=SessionKind.API.value)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=SessionStatus.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    absolute_expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    amr: Mapped[list | None] = mapped_column(JSON)
    acr: Mapped[str | None] = mapped_column(String(64))
    # The upstream's slug when the sign-in was federated (the ID token's `idp` claim).
    idp: Mapped[str | None] = mapped_column(String(64))
    # What single logout at that upstream needs (SAML NameID and SessionIndex).
    upstream_session: Mapped[dict | None] = mapped_column(JSON)
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))

    user: Mapped[User] = relationship()

    def start(self, now: datetime, idle: int, absolute: int) -> None:
        """Open the windows: idle from now, absolute cap from creation."""
        self.created_at = now
        self.last_seen_at = now
        self.auth_time = now
        self.absolute_expires_at = now + timedelta(seconds=absolute)
        self.expires_at = min(now + timedelta(seconds=idle), self.absolute_expires_at)

    def refresh(self, now: datetime, idle: int) -> None:
        """Slide the idle window: expires_at = now + idle, never past created_at + absolute."""
        self.last_seen_at = now
        self.expires_at = min(now + timedelta(seconds=idle), self.absolute_expires_at)

    def is_live(self, now: datetime) -> bool:
        return is_live(self.status, self.expires_at, now)

    def revoke(self, now: datetime) -> None:
        self.status = SessionStatus.REVOKED.value
        self.revoked_at = now
