"""/api/v1/audit: the audit log, for platform admins (every event) and the owners and admins of an
organization (its events), by API session or by an access token with `read:audit`."""
from __future__ import annotations

import json

from flask import Response, stream_with_context
from flask_smorest import Blueprint

from idp.api.conventions import PageMetaSchema, page_meta, paginate
from idp.api.envelope import ErrorEnvelopeSchema, envelope_of, ok
from idp.api.principal import Principal
from idp.api.schemas.audit import AuditEventSchema, AuditExportQuerySchema, AuditQuerySchema
from idp.api.security import BEARER_SECURITY, current_principal, management_required, require_organization_manager
from idp.errors import Forbidden
from idp.services import audit, audit_log
from idp.services.audit_log import AuditFilter
from idp.services.management_scopes import READ_AUDIT

blp = Blueprint("audit", __name__, url_prefix="/api/v1/audit", description="The audit log")

NDJSON = "application/x-ndjson"
FORBIDDEN = {"schema": ErrorEnvelopeSchema,
             "description": "Neither a platform admin nor an owner or admin of an organization (or of the one asked "
                            "for), or an access token without read:audit"}
NOT_FOUND = {"schema": ErrorEnvelopeSchema,
             "description": "organization_id names no organization the caller belongs to"}
INVALID = {"schema": ErrorEnvelopeSchema,
           "description": "VALIDATION_ERROR: a filter is malformed or unknown, the cursor is not one this server "
                          "made, or the range is empty or too long; details name each parameter"}
_EVENT = AuditEventSchema()


def visible_organization_ids(principal: Principal, organization_id: str | None) -> frozenset[str] | None:
    """The organizations whose events the principal may read (None: every event).

    An organization the caller has no relation to is a 404, so the filter never tells whether it
    exists; a member (not owner or admin) is a 403.
    """
    if principal.is_platform_admin:
        return None
    if organization_id is not None:
        require_organization_manager(principal, organization_id)
        return frozenset({organization_id})
    if principal.is_service_account:
        return frozenset({principal.organization_id})
    administered = audit_log.administered_organization_ids(principal.user.id)
    if not administered:
        raise Forbidden("Only platform admins and organization owners and admins may read the audit log.")
    return administered


@blp.route("", methods=["GET"])
@management_required(READ_AUDIT)
@blp.doc(security=BEARER_SECURITY)
@blp.arguments(AuditQuerySchema, location="query")
@blp.response(200, envelope_of(AuditEventSchema, many=True, meta=PageMetaSchema),
              description="Events newest first; meta.pagination.next_cursor fetches the next page")
@blp.alt_response(403, **FORBIDDEN)
@blp.alt_response(404, **NOT_FOUND)
@blp.alt_response(422, **INVALID)
def list_events(query: dict):
    """List audit events, newest first (platform admins: all; owners and admins: their organizations')."""
    visible = visible_organization_ids(current_principal(), query.get("organization_id"))
    rows, next_cursor = paginate(audit_log.events_query(AuditFilter.of(query), visible),
                                 columns=audit_log.ORDER_COLUMNS, limit=query["limit"], cursor=query.get("cursor"))
    return ok([audit_log.event_data(row) for row in rows], "Audit events", meta=page_meta(next_cursor, query["limit"]))


@blp.route("/export", methods=["GET"])
@management_required(READ_AUDIT)
@blp.doc(security=BEARER_SECURITY)
@blp.arguments(AuditExportQuerySchema, location="query")
@blp.response(200, AuditEventSchema, content_type=NDJSON,
              description="A stream of newline-delimited JSON (one event per line, oldest first), not the "
                          "envelope. A stream cut short by a server failure ends without its final chunk.")
@blp.alt_response(403, **FORBIDDEN)
@blp.alt_response(404, **NOT_FOUND)
@blp.alt_response(422, **INVALID)
def export_events(query: dict):
    """Export the events of a time range (at most 31 days) as NDJSON, streamed in batches."""
    principal = current_principal()
    visible = visible_organization_ids(principal, query.get("organization_id"))
    filters = AuditFilter.of(query)
    audit.record("audit.exported", actor_user_id=principal.actor_user_id, target_type="audit_log",
                 organization_id=query.get("organization_id"), details=_export_details(principal, filters))
    return Response(stream_with_context(_ndjson(audit_log.export_batches(filters, visible))), mimetype=NDJSON)


def _ndjson(batches):
    for batch in batches:
        yield "".join(json.dumps(_EVENT.dump(row), separators=(",", ":")) + "\n" for row in batch)


def _export_details(principal: Principal, filters: AuditFilter) -> dict:
    details = {"since": filters.since.isoformat(), "until": filters.until.isoformat(),
               "filters": sorted(name for name, value in vars(filters).items()
                                 if value is not None and name not in ("since", "until"))}
    if principal.actor_client_id:
        details["actor_client_id"] = principal.actor_client_id
    return details
