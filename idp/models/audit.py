"""The audit log: one row per security-relevant action."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.base import IdMixin, UTCDateTime, utcnow


class AuditEvent(IdMixin, db.Model):
    __tablename__ = "audit_events"
    # The audit API's filters page newest first by (created_at, id) within each of these (migration 0009);
    # the composites also serve plain lookups by organization or actor.
    __table_args__ = (
        Index("ix_audit_events_organization_created", "organization_id", "created_at", "id"),
        Index("ix_audit_events_actor_created", "actor_user_id", "created_at", "id"),
        Index("ix_audit_events_target_created", "target_type", "target_id", "created_at"),
        Index("ix_audit_events_request_id", "request_id"),
    )

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False, default="success")
    # Plain ids, not foreign keys: the record outlives the user or organization it names.
    actor_user_id: Mapped[str | None] = mapped_column(String(36))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    organization_id: Mapped[str | None] = mapped_column(String(36))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict | None] = mapped_column(JSON)
