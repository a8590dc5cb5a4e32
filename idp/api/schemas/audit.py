"""Schemas of /api/v1/audit: the audit log's filters and its events."""
from __future__ import annotations

from datetime import timedelta, timezone

import marshmallow as ma

from idp.api.conventions import PageArgsSchema, StrictSchema
from idp.api.schemas.text import line
from idp.services.audit_log import OUTCOMES

EXPORT_MAX_RANGE = timedelta(days=31)


def _instant(description: str, **kwargs) -> ma.fields.AwareDateTime:
    return ma.fields.AwareDateTime(format="iso", default_timezone=timezone.utc, metadata={
        "description": f"{description}; ISO 8601 (RFC 3339), UTC when no offset is given"}, **kwargs)


class _FilterFields(ma.Schema):
    """The filters common to the list and the export (all optional, combined with AND)."""

    action = line(64, metadata={"description": "Exactly this action, e.g. user.login", "example": "user.login"})
    actor_user_id = line(36, metadata={"description": "Events by this user (id)"})
    target_type = line(32, metadata={"description": "Events on this kind of target, e.g. user, client"})
    target_id = line(64, metadata={"description": "Events on this target (id)"})
    organization_id = line(36, metadata={
        "description": "Only this organization's events (platform admins, or its owners and admins)"})
    outcome = ma.fields.String(validate=ma.validate.OneOf(OUTCOMES), metadata={"description": "success or failure"})
    request_id = line(64, metadata={"description": "Events of one request (the X-Request-ID it answered)"})

    @ma.validates_schema
    def _range_is_ordered(self, data, **kwargs):
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ma.ValidationError("Must be later than since.", field_name="until")


class AuditQuerySchema(_FilterFields, PageArgsSchema):
    """Filters and page of GET /api/v1/audit."""

    since = _instant("Events at or after this instant")
    until = _instant("Events before this instant")


class AuditExportQuerySchema(_FilterFields, StrictSchema):
    """Filters of GET /api/v1/audit/export: a bounded range is required."""

    since = _instant("Events at or after this instant", required=True)
    until = _instant(f"Events before this instant, at most {EXPORT_MAX_RANGE.days} days after since",
                     required=True)

    @ma.validates_schema
    def _range_is_bounded(self, data, **kwargs):
        if data.get("since") and data.get("until") and data["until"] - data["since"] > EXPORT_MAX_RANGE:
            raise ma.ValidationError(f"The range may span at most {EXPORT_MAX_RANGE.days} days.", field_name="until")


class AuditEventSchema(ma.Schema):
    """One audit event. `details` never holds secrets (they are dropped when the event is written)."""

    class Meta:
        ordered = True

    id = ma.fields.String()
    created_at = ma.fields.DateTime(metadata={"description": "When it happened (UTC)"})
    action = ma.fields.String(metadata={"example": "user.login"})
    outcome = ma.fields.String(metadata={"description": "success or failure"})
    actor_user_id = ma.fields.String(allow_none=True, metadata={"description": "Who did it (a user id); null for "
                                                                               "the system or a service account"})
    target_type = ma.fields.String(allow_none=True)
    target_id = ma.fields.String(allow_none=True)
    organization_id = ma.fields.String(allow_none=True)
    ip_address = ma.fields.String(allow_none=True)
    user_agent = ma.fields.String(allow_none=True)
    request_id = ma.fields.String(allow_none=True)
    details = ma.fields.Dict(allow_none=True, metadata={"description": "What changed, by field name; never values "
                                                                       "of secrets"})
