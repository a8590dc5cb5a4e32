"""/api/v1/organizations: organizations and their members, on the management API's principal.

Callers: an API session, or a token with `manage:organizations` of a user (acting as that user) or of
a service account. Members read; owners and admins manage members and settings; only owners grant or
remove ownership and delete; platform admins act as owners everywhere. An organization's service
account acts as one of its admins; a platform-wide service account as a platform admin. Anyone else
gets 404, as for a missing organization.

Creating: the caller becomes the first owner. A platform admin may name another owner
(`owner_user_id` or `owner_email`); a platform-wide service account must, since the last-owner rule
needs an owner user from the start (422 naming `owner_user_id` otherwise); an organization's service
account cannot create organizations (403).

ETags (RFC 9110 8.8.3): an organization's GET, create and PATCH answer the organization's ETag, which
PATCH and DELETE honour in `If-Match`; a member's GET and role PATCH answer the membership's ETag,
which the role PATCH and the member DELETE honour. A mismatch is 412 PRECONDITION_FAILED (RFC 9110
13.1.1) with nothing changed.
"""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from idp.api.conventions import (ETAG_HEADER, IF_MATCH_PARAMETER, PRECONDITION_FAILED_RESPONSE, PageArgsSchema,
                                 PageMetaSchema, check_if_match, etag_for, page_meta, paginate, with_etag)
from idp.api.envelope import ErrorEnvelopeSchema, envelope_of, ok
from idp.api.principal import Principal
from idp.api.schemas.organizations import (
    MemberAddSchema, MemberSchema, OrganizationCreateSchema, OrganizationSchema, OrganizationUpdateSchema,
    RoleUpdateSchema,
)
from idp.api.security import BEARER_SECURITY, current_principal, management_required
from idp.models import Membership, Organization, Role
from idp.services import organizations
from idp.services.management_scopes import MANAGE_ORGANIZATIONS
from idp.services.organization_access import OrganizationAccess, OrganizationActor

blp = Blueprint("organizations", __name__, url_prefix="/api/v1/organizations",
                description="Organizations and their members")

NOT_FOUND = {"schema": ErrorEnvelopeSchema,
             "description": "No such organization or member (or the caller is not in the organization)"}
FORBIDDEN = {"schema": ErrorEnvelopeSchema,
             "description": "The caller's role does not allow this, or the token lacks manage:organizations "
                            "(insufficient_scope)"}
CREATE_FORBIDDEN = {"schema": ErrorEnvelopeSchema,
                    "description": "The token lacks manage:organizations, the caller is an organization's service "
                                   "account, or names another owner without being a platform admin"}
CONFLICT = {"schema": ErrorEnvelopeSchema, "description": "Slug in use, already a member, or last owner"}


def actor_of(principal: Principal) -> OrganizationActor:
    return OrganizationActor(user=principal.user, client_id=principal.actor_client_id,
                             client_organization_id=principal.organization_id if principal.is_service_account
                             else None, is_platform_admin=principal.is_platform_admin)


def access_to(organization_id: str, *, for_update: bool = False) -> OrganizationAccess:
    return organizations.get_access(actor_of(current_principal()), organization_id, for_update=for_update)


def organization_data(organization: Organization, role: Role | None) -> dict:
    return {"id": organization.id, "name": organization.name, "slug": organization.slug,
            "description": organization.description, "role": role.value if role else None,
            "created_at": organization.created_at, "updated_at": organization.updated_at}


def organization_etag(organization: Organization) -> str:
    """Of the organization's own fields, whoever asks (the `role` shown is the caller's, not its state)."""
    return etag_for(organization.id, organization.name, organization.slug, organization.description,
                    organization.updated_at)


def membership_etag(membership: Membership) -> str:
    return etag_for(membership.id, membership.role, membership.updated_at)


def if_match_organization(organization: Organization) -> None:
    check_if_match(organization_etag(organization))


def if_match_membership(membership: Membership) -> None:
    check_if_match(membership_etag(membership))


@blp.route("")
class OrganizationCollection(MethodView):
    @management_required(MANAGE_ORGANIZATIONS)
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(OrganizationCreateSchema)
    @blp.response(201, envelope_of(OrganizationSchema), headers=ETAG_HEADER,
                  description="Created, with its first owner (the caller unless a platform admin named another)")
    @blp.alt_response(403, **CREATE_FORBIDDEN)
    @blp.alt_response(409, **CONFLICT)
    @blp.alt_response(422, schema=ErrorEnvelopeSchema,
                      description="VALIDATION_ERROR: a field is invalid or unknown, the named owner is no active "
                                  "account, or a platform-wide service account named no owner")
    def post(self, data: dict):
        """Create an organization; the caller becomes its owner (or the owner a platform admin names)."""
        actor = actor_of(current_principal())
        organization, owner = organizations.create_organization(
            actor, data["name"], data.get("slug"), data.get("description"),
            owner_email=data.get("owner_email"), owner_user_id=data.get("owner_user_id"))
        role = Role.OWNER if owner.id == actor.user_id else None
        return with_etag((ok(organization_data(organization, role), "Organization created", code=201), 201),
                         organization_etag(organization))


@blp.route("/<organization_id>")
class OrganizationItem(MethodView):
    @management_required(MANAGE_ORGANIZATIONS)
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, envelope_of(OrganizationSchema), headers=ETAG_HEADER)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    def get(self, organization_id: str):
        """Get an organization (members and platform admins), with the ETag a PATCH or DELETE may send back."""
        access = access_to(organization_id)
        return with_etag(ok(organization_data(access.organization, access.role), "Organization"),
                         organization_etag(access.organization))

    @management_required(MANAGE_ORGANIZATIONS)
    @blp.doc(security=BEARER_SECURITY, parameters=[IF_MATCH_PARAMETER])
    @blp.arguments(OrganizationUpdateSchema)
    @blp.response(200, envelope_of(OrganizationSchema), headers=ETAG_HEADER)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, **CONFLICT)
    @blp.alt_response(412, **PRECONDITION_FAILED_RESPONSE)
    def patch(self, data: dict, organization_id: str):
        """Change an organization's name, slug or description (owners and admins)."""
        access = access_to(organization_id, for_update=True)
        organization = organizations.update_organization(access, data, precondition=if_match_organization)
        return with_etag(ok(organization_data(organization, access.role), "Organization updated"),
                         organization_etag(organization))

    @management_required(MANAGE_ORGANIZATIONS)
    @blp.doc(security=BEARER_SECURITY, parameters=[IF_MATCH_PARAMETER])
    @blp.response(200, envelope_of(None), description="Deleted, with its memberships")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(412, **PRECONDITION_FAILED_RESPONSE)
    def delete(self, organization_id: str):
        """Delete an organization (owners only)."""
        access = access_to(organization_id, for_update=True)
        organizations.delete_organization(access, precondition=if_match_organization)
        return ok({}, "Organization deleted")


@blp.route("/<organization_id>/members")
class MemberCollection(MethodView):
    @management_required(MANAGE_ORGANIZATIONS)
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, envelope_of(MemberSchema, many=True, meta=PageMetaSchema),
                  description="The members, newest first (each with its role)")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(422, schema=ErrorEnvelopeSchema,
                      description="VALIDATION_ERROR: an unknown or malformed parameter, or a cursor of another list")
    def get(self, query: dict, organization_id: str):
        """List an organization's members (any member)."""
        select = organizations.members_query(access_to(organization_id))
        members, next_cursor = paginate(select, columns=organizations.MEMBER_ORDER, limit=query["limit"],
                                        cursor=query.get("cursor"))
        return ok(members, "Members", meta=page_meta(next_cursor, query["limit"]))

    @management_required(MANAGE_ORGANIZATIONS)
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(MemberAddSchema)
    @blp.response(201, envelope_of(MemberSchema), headers=ETAG_HEADER)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, **CONFLICT)
    def post(self, data: dict, organization_id: str):
        """Add an existing user by email or user_id (owners and admins; only owners add owners)."""
        access = access_to(organization_id, for_update=True)
        membership = organizations.add_member(access, Role(data["role"]), email=data.get("email"),
                                              user_id=data.get("user_id"))
        return with_etag((ok(membership, "Member added", code=201), 201), membership_etag(membership))


@blp.route("/<organization_id>/members/<user_id>")
class MemberItem(MethodView):
    @management_required(MANAGE_ORGANIZATIONS)
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, envelope_of(MemberSchema), headers=ETAG_HEADER)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    def get(self, organization_id: str, user_id: str):
        """Get a member (any member), with the ETag a role PATCH or a DELETE may send back."""
        membership = organizations.get_member(access_to(organization_id), user_id)
        return with_etag(ok(membership, "Member"), membership_etag(membership))

    @management_required(MANAGE_ORGANIZATIONS)
    @blp.doc(security=BEARER_SECURITY, parameters=[IF_MATCH_PARAMETER])
    @blp.response(200, envelope_of(None), description="Removed")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, **CONFLICT)
    @blp.alt_response(412, **PRECONDITION_FAILED_RESPONSE)
    def delete(self, organization_id: str, user_id: str):
        """Remove a member (owners and admins; only owners remove owners); any member may remove themself."""
        organizations.remove_member(access_to(organization_id, for_update=True), user_id,
                                    precondition=if_match_membership)
        return ok({}, "Member removed")


@blp.route("/<organization_id>/members/<user_id>/role", methods=["PATCH"])
@management_required(MANAGE_ORGANIZATIONS)
@blp.doc(security=BEARER_SECURITY, parameters=[IF_MATCH_PARAMETER])
@blp.arguments(RoleUpdateSchema)
@blp.response(200, envelope_of(MemberSchema), headers=ETAG_HEADER,
              description="The member with the role; If-Match takes the ETag of GET .../members/<user_id>")
@blp.alt_response(403, **FORBIDDEN)
@blp.alt_response(404, **NOT_FOUND)
@blp.alt_response(409, **CONFLICT)
@blp.alt_response(412, **PRECONDITION_FAILED_RESPONSE)
def change_member_role(data: dict, organization_id: str, user_id: str):
    """Change a member's role (owners and admins; only owners grant or remove ownership)."""
    membership = organizations.change_role(access_to(organization_id, for_update=True), user_id,
                                           Role(data["role"]), precondition=if_match_membership)
    return with_etag(ok(membership, "Role updated"), membership_etag(membership))
