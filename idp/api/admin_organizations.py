"""/api/v1/admin/organizations: every organization of the platform, for platform admins (scope
manage:organizations): searchable by name or slug and paginated by cursor."""
from __future__ import annotations

from flask_smorest import Blueprint
from sqlalchemy import func, or_, select

from idp.api.conventions import PageMetaSchema, page_meta, paginate
from idp.api.envelope import ErrorEnvelopeSchema, envelope_of, ok
from idp.api.schemas.admin_organizations import AdminOrganizationQuerySchema, AdminOrganizationSchema
from idp.api.security import BEARER_SECURITY, platform_admin_management
from idp.extensions import db
from idp.models import Membership, Organization
from idp.services.management_scopes import MANAGE_ORGANIZATIONS

blp = Blueprint("admin_organizations", __name__, url_prefix="/api/v1/admin/organizations",
                description="Every organization of the platform (platform admins)")

FORBIDDEN = {"schema": ErrorEnvelopeSchema,
             "description": "FORBIDDEN: the caller is not a platform admin (or a platform-wide service account), "
                            "or the token lacks the scope manage:organizations"}
INVALID = {"schema": ErrorEnvelopeSchema,
           "description": "VALIDATION_ERROR: a bad limit, q or cursor, or an unknown query parameter (named)"}


def member_counts(organization_ids: list[str]) -> dict[str, int]:
    """Members of each organization, in one grouped query for the page."""
    if not organization_ids:
        return {}
    query = (select(Membership.organization_id, func.count(Membership.id))
             .where(Membership.organization_id.in_(organization_ids)).group_by(Membership.organization_id))
    return {organization_id: count for organization_id, count in db.session.execute(query)}


def organization_item(organization: Organization, member_count: int) -> dict:
    return {"id": organization.id, "name": organization.name, "slug": organization.slug,
            "description": organization.description, "member_count": member_count,
            "created_at": organization.created_at, "updated_at": organization.updated_at}


@blp.route("", methods=["GET"])
@platform_admin_management(MANAGE_ORGANIZATIONS)
@blp.doc(security=BEARER_SECURITY)
@blp.arguments(AdminOrganizationQuerySchema, location="query")
@blp.response(200, envelope_of(AdminOrganizationSchema, many=True, meta=PageMetaSchema),
              description="Newest first; meta.pagination.next_cursor is null on the last page")
@blp.alt_response(403, **FORBIDDEN)
@blp.alt_response(422, **INVALID)
def list_organizations(query: dict):
    """List every organization, newest first, optionally those whose name or slug contains `q`."""
    statement = select(Organization)
    if query.get("q"):
        needle = query["q"].lower()
        statement = statement.where(or_(func.lower(Organization.name).contains(needle, autoescape=True),
                                        func.lower(Organization.slug).contains(needle, autoescape=True)))
    rows, next_cursor = paginate(statement, columns=(Organization.created_at, Organization.id),
                                 limit=query["limit"], cursor=query.get("cursor"))
    counts = member_counts([row.id for row in rows])
    return ok([organization_item(row, counts.get(row.id, 0)) for row in rows], "Organizations",
              meta=page_meta(next_cursor, query["limit"]))
