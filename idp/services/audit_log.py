"""Reading the audit log: filtered queries and a batched export. idp.services.audit writes it.

Visibility is a set of organization ids (None: every event). Events without an organization (a
user's own sign-ins, platform settings) are seen by platform admins only.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

from sqlalchemy import Select, select

from idp.extensions import db
from idp.models import AuditEvent
from idp.services import keyset
from idp.services.organization_access import managed_organizations_query

ORDER_COLUMNS = (AuditEvent.created_at, AuditEvent.id)
EXPORT_BATCH_SIZE = 1000
OUTCOMES = ("success", "failure")
# The columns an event shows, in this order; every one of them is safe to show (audit.record drops
# secrets from `details` before they are written).
EVENT_COLUMNS = ("id", "created_at", "action", "outcome", "actor_user_id", "target_type", "target_id",
                 "organization_id", "ip_address", "user_agent", "request_id", "details")


@dataclass(frozen=True)
class AuditFilter:
    """What to select; every field set narrows the events (AND). `since` is inclusive, `until` exclusive."""

    action: str | None = None
    actor_user_id: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    organization_id: str | None = None
    outcome: str | None = None
    request_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def of(cls, arguments: dict) -> "AuditFilter":
        return cls(**{name: arguments.get(name) for name in cls.__dataclass_fields__})


_EQUALITY_FILTERS = ("action", "actor_user_id", "target_type", "target_id", "organization_id", "outcome",
                     "request_id")


def administered_organization_ids(user_id: str) -> frozenset[str]:
    """The organizations in which the user is an owner or admin."""
    return frozenset(db.session.scalars(managed_organizations_query(user_id)))


def events_query(filters: AuditFilter, visible_organization_ids: frozenset[str] | None) -> Select:
    """The events matching `filters` among those visible, unordered (the caller pages them)."""
    query = select(AuditEvent.__table__)
    for name in _EQUALITY_FILTERS:
        value = getattr(filters, name)
        if value is not None:
            query = query.where(getattr(AuditEvent, name) == value)
    if filters.since is not None:
        query = query.where(AuditEvent.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.created_at < filters.until)
    if visible_organization_ids is not None:
        query = query.where(AuditEvent.organization_id.in_(sorted(visible_organization_ids)))
    return query


def export_batches(filters: AuditFilter, visible_organization_ids: frozenset[str] | None,
                   batch_size: int | None = None) -> Iterator[list[dict]]:
    """The matching events oldest first, `batch_size` at a time.

    Each batch is its own keyset query over core rows (no ORM identities kept), so memory stays at
    one batch however long the range, and events written meanwhile after the last one read are
    still included when they fall in the range.
    """
    batch_size = batch_size or EXPORT_BATCH_SIZE
    base = events_query(filters, visible_organization_ids)
    order = keyset.order_by(ORDER_COLUMNS, descending=False)
    last = None
    while True:
        query = base if last is None else base.where(keyset.after(ORDER_COLUMNS, last, descending=False))
        rows = [event_data(row) for row in db.session.execute(query.order_by(*order).limit(batch_size))]
        if rows:
            yield rows
        if len(rows) < batch_size:
            return
        last = (rows[-1]["created_at"], rows[-1]["id"])


def event_data(row) -> dict:
    """One event as a dict of EVENT_COLUMNS (from a core row or an AuditEvent)."""
    mapping = getattr(row, "_mapping", None)
    return {name: (mapping[name] if mapping is not None else getattr(row, name)) for name in EVENT_COLUMNS}
