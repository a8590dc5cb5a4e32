"""Expiring counters (sign-in lockout, mail and request limits) when Redis is not configured or down."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.base import UTCDateTime


class Counter(db.Model):
    """One counter: its value counts from the first increment until expires_at, then starts again."""

    __tablename__ = "counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    # 64-bit: lockout stores Unix times as counter values (2**31 seconds runs out in 2038).
    value: Mapped[int] = mapped_column(BigInteger, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
