"""Single-use account tokens sent by email: verify an address, reset or set a password."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models.base import IdMixin, UTCDateTime, utcnow
from idp.models.user import User


class TokenPurpose(str, enum.Enum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"
    # An account a platform admin created: the invitee chooses the first password (no migration: a string column).
    SET_PASSWORD = "set_password"


class AccountToken(IdMixin, db.Model):
    __tablename__ = "account_tokens"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    purpose: Mapped[str] = mapped_column(String(32), nullable=False)
    # SHA-256 of the emailed token (security.secrets.hash_token); the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    # The address the token was mailed to: a verification only counts for the address it was sent to.
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()
