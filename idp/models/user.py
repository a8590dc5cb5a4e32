"""End users and platform admins."""
from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.base import IdMixin, TimestampMixin, UTCDateTime


def new_subject() -> str:
    """A stable, opaque OIDC `sub`, unrelated to the database id."""
    return secrets.token_urlsafe(24)


class User(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "users"
    # The admin user list pages newest first by (created_at, id) (migration 0009).
    __table_args__ = (Index("ix_users_created_at_id", "created_at", "id"),)

    email: Mapped[str] = mapped_column(String(254), unique=True, nullable=False)
    password_hash: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    picture: Mapped[str | None] = mapped_column(String(500))
    locale: Mapped[str | None] = mapped_column(String(35))
    zoneinfo: Mapped[str | None] = mapped_column(String(64))
    phone_number: Mapped[str | None] = mapped_column(String(32))
    phone_number_verified: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    address: Mapped[dict | None] = mapped_column(JSON)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    subject: Mapped[str] = mapped_column(String(64), unique=True, nullable=False, default=new_subject)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<User {self.id}>"
