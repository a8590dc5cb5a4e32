"""/api/v1/organizations: organizations and their members, for signed-in users."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from idp.api.envelope import ErrorEnvelopeSchema, ListMetaSchema, envelope_of, ok
from idp.api.schemas.organizations import (
    MemberAddSchema, MemberSchema, OrganizationCreateSchema, OrganizationSchema, OrganizationUpdateSchema,
    RoleUpdateSchema,
)
from idp.api.security import BEARER_SECURITY, current_user, login_required
from idp.models import Organization, Role
from idp.services import organizations

blp = Blueprint("organizations", __name__, url_prefix="/api/v1/organizations",
                description="Organizations and their members")

NOT_FOUND = {"schema": ErrorEnvelopeSchema, "description": "No such organization (or the caller is not in it)"}
FORBIDDEN = {"schema": ErrorEnvelopeSchema, "description": "The caller's role does not allow this"}
CONFLICT = {"schema": ErrorEnvelopeSchema, "description": "Slug in use, already a member, or last owner"}


def organization_data(organization: Organization, role: Role | None) -> dict:
    return {"id": organization.id, "name": organization.name, "slug": organization.slug,
            "description": organization.description, "role": role.value if role else None,
            "created_at": organization.created_at, "updated_at": organization.updated_at}


@blp.route("")
class OrganizationCollection(MethodView):
    @login_required
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(OrganizationCreateSchema)
    @blp.response(201, envelope_of(OrganizationSchema), description="Created; the caller is its owner")
    @blp.alt_response(409, **CONFLICT)
    def post(self, data: dict):
        """Create an organization; the caller becomes its owner."""
        organization = organizations.create_organization(current_user(), data["name"], data.get("slug"),
                                                         data.get("description"))
        return ok(organization_data(organization, Role.OWNER), "Organization created", code=201)


@blp.route("/<organization_id>")
class OrganizationItem(MethodView):
    @login_required
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, envelope_of(OrganizationSchema))
    @blp.alt_response(404, **NOT_FOUND)
    def get(self, organization_id: str):
        """Get an organization (members and platform admins)."""
        access = organizations.get_access(current_user(), organization_id)
        return ok(organization_data(access.organization, access.role), "Organization")

    @login_required
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(OrganizationUpdateSchema)
    @blp.response(200, envelope_of(OrganizationSchema))
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, **CONFLICT)
    def patch(self, data: dict, organization_id: str):
        """Change an organization's name, slug or description (owners and admins)."""
        access = organizations.get_access(current_user(), organization_id)
        organization = organizations.update_organization(access, data)
        return ok(organization_data(organization, access.role), "Organization updated")

    @login_required
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, envelope_of(None), description="Deleted, with its memberships")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    def delete(self, organization_id: str):
        """Delete an organization (owners only)."""
        access = organizations.get_access(current_user(), organization_id)
        organizations.delete_organization(access)
        return ok({}, "Organization deleted")


@blp.route("/<organization_id>/members")
class MemberCollection(MethodView):
    @login_required
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, envelope_of(MemberSchema, many=True, meta=ListMetaSchema),
                  description="Owners first, then admins, then members")
    @blp.alt_response(404, **NOT_FOUND)
    def get(self, organization_id: str):
        """List an organization's members (any member)."""
        members = organizations.list_members(organizations.get_access(current_user(), organization_id))
        return ok(members, "Members", meta={"count": len(members)})

    @login_required
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(MemberAddSchema)
    @blp.response(201, envelope_of(MemberSchema))
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, **CONFLICT)
    def post(self, data: dict, organization_id: str):
        """Add an existing user by email or user_id (owners and admins; only owners add owners)."""
        access = organizations.get_access(current_user(), organization_id)
        membership = organizations.add_member(access, Role(data["role"]), email=data.get("email"),
                                              user_id=data.get("user_id"))
        return ok(membership, "Member added", code=201)


@blp.route("/<organization_id>/members/<user_id>", methods=["DELETE"])
@login_required
@blp.doc(security=BEARER_SECURITY)
@blp.response(200, envelope_of(None), description="Removed")
@blp.alt_response(403, **FORBIDDEN)
@blp.alt_response(404, **NOT_FOUND)
@blp.alt_response(409, **CONFLICT)
def remove_member(organization_id: str, user_id: str):
    """Remove a member (owners and admins; only owners remove owners); any member may remove themself."""
    access = organizations.get_access(current_user(), organization_id)
    organizations.remove_member(access, user_id)
    return ok({}, "Member removed")


@blp.route("/<organization_id>/members/<user_id>/role", methods=["PATCH"])
@login_required
@blp.doc(security=BEARER_SECURITY)
@blp.arguments(RoleUpdateSchema)
@blp.response(200, envelope_of(MemberSchema))
@blp.alt_response(403, **FORBIDDEN)
@blp.alt_response(404, **NOT_FOUND)
@blp.alt_response(409, **CONFLICT)
def change_member_role(data: dict, organization_id: str, user_id: str):
    """Change a member's role (owners and admins; only owners grant or remove ownership)."""
    access = organizations.get_access(current_user(), organization_id)
    membership = organizations.change_role(access, user_id, Role(data["role"]))
    return ok(membership, "Role updated")
