"""/api/v1/organizations/<id>/invitations: invite an address to an organization, list, resend, revoke.

Callers: owners and admins of the organization (API session, or a token with `manage:organizations`
of such a user or of the organization's service account), and platform admins. Members get 403,
outsiders 404. Only owners and platform admins invite owners. The mailed token is never returned.
"""
from __future__ import annotations

from functools import wraps

from flask.views import MethodView
from flask_smorest import Blueprint

from idp.api.conventions import (ETAG_HEADER, IF_MATCH_PARAMETER, PRECONDITION_FAILED_RESPONSE, PageMetaSchema,
                                 check_if_match, etag_for, page_meta, paginate, with_etag)
from idp.api.envelope import ErrorEnvelopeSchema, envelope_of, ok
from idp.api.schemas.invitations import InvitationCreateSchema, InvitationListQuerySchema, InvitationSchema
from idp.api.security import BEARER_SECURITY, current_principal, management_required, require_organization_manager
from idp.models import Invitation, InvitationStatus, Organization, Role
from idp.services import invitations
from idp.services.invitations import Inviter

SCOPE = "manage:organizations"

blp = Blueprint("invitations", __name__, url_prefix="/api/v1/organizations",
                description="Invitations to join an organization: a single-use, expiring link mailed to an address")

NOT_FOUND = {"schema": ErrorEnvelopeSchema,
             "description": "No such organization or invitation (or the caller is not in the organization)"}
FORBIDDEN = {"schema": ErrorEnvelopeSchema,
             "description": "A member (not an owner or admin), an admin inviting an owner, or a token without "
                            "manage:organizations"}
CONFLICT = {"schema": ErrorEnvelopeSchema,
            "description": "The address is already a member or has an open invitation, or the invitation was "
                           "already accepted or revoked"}
MAIL_LIMITED = {"schema": ErrorEnvelopeSchema,
                "description": "RATE_LIMITED: too many mails went to this address recently (RATELIMIT_MAIL_RECIPIENT); "
                               "nothing was changed"}
INVALID_QUERY = {"schema": ErrorEnvelopeSchema,
                 "description": "VALIDATION_ERROR: a query parameter is malformed or unknown, or the cursor is not "
                                "valid; details name each"}


def managers_only(view):
    """manage:organizations, and owner or admin of the organization in the path (platform admins too);
    the view gets the organization instead of its id."""

    @management_required(SCOPE)
    @wraps(view)
    def wrapper(*args, organization_id: str, **kwargs):
        organization = require_organization_manager(current_principal(), organization_id)
        return view(*args, organization=organization, **kwargs)

    return wrapper


def _inviter(organization: Organization) -> Inviter:
    principal = current_principal()
    owner = principal.is_platform_admin or principal.organization_role(organization.id) is Role.OWNER
    name = principal.user.name or principal.user.email if principal.user is not None else None
    return Inviter(principal.actor_user_id, principal.actor_client_id, owner, name)


def invitation_data(invitation: Invitation) -> dict:
    return {"id": invitation.id, "organization_id": invitation.organization_id, "email": invitation.email,
            "role": invitation.role, "status": invitation.status().value, "invited_by": invitation.invited_by,
            "created_at": invitation.created_at, "expires_at": invitation.expires_at,
            "last_sent_at": invitation.last_sent_at, "send_count": invitation.send_count,
            "accepted_at": invitation.accepted_at, "accepted_by": invitation.accepted_by,
            "revoked_at": invitation.revoked_at}


def etag_of(invitation: Invitation) -> str:
    return etag_for(invitation.id, invitation.send_count, invitation.accepted_at, invitation.revoked_at)


def _answer(invitation: Invitation, message: str, code: int = 200):
    return with_etag((ok(invitation_data(invitation), message, code=code), code), etag_of(invitation))


@blp.route("/<organization_id>/invitations")
class InvitationCollection(MethodView):
    @managers_only
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(InvitationListQuerySchema, location="query")
    @blp.response(200, envelope_of(InvitationSchema, many=True, meta=PageMetaSchema),
                  description="Newest first; meta.pagination.next_cursor is null on the last page")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(422, **INVALID_QUERY)
    def get(self, query: dict, organization: Organization):
        """List the organization's invitations, optionally of one status (open, accepted, revoked, expired)."""
        status = InvitationStatus(query["status"]) if query.get("status") else None
        found, next_cursor = paginate(invitations.invitations_query(organization.id, status),
                                      columns=(Invitation.created_at, Invitation.id),
                                      limit=query["limit"], cursor=query.get("cursor"))
        return ok([invitation_data(row) for row in found], "Invitations", meta=page_meta(next_cursor, query["limit"]))

    @managers_only
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(InvitationCreateSchema)
    @blp.response(201, envelope_of(InvitationSchema), headers=ETAG_HEADER,
                  description="Created; the link is mailed to the address (never returned)")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, **CONFLICT)
    @blp.alt_response(429, **MAIL_LIMITED)
    def post(self, data: dict, organization: Organization):
        """Invite an address with a role (owners and admins; only owners invite owners)."""
        invitation = invitations.invite(organization, data["email"], Role(data["role"]), _inviter(organization))
        return _answer(invitation, "Invitation sent", code=201)


@blp.route("/<organization_id>/invitations/<invitation_id>")
class InvitationItem(MethodView):
    @managers_only
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, envelope_of(InvitationSchema), headers=ETAG_HEADER)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    def get(self, organization: Organization, invitation_id: str):
        """Get an invitation, with the ETag a DELETE may send back in If-Match."""
        return _answer(invitations.get_invitation(organization.id, invitation_id), "Invitation")

    @managers_only
    @blp.doc(security=BEARER_SECURITY, parameters=[IF_MATCH_PARAMETER])
    @blp.response(200, envelope_of(InvitationSchema), headers=ETAG_HEADER, description="Revoked: the link is dead")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, **CONFLICT)
    @blp.alt_response(412, **PRECONDITION_FAILED_RESPONSE)
    def delete(self, organization: Organization, invitation_id: str):
        """Revoke an open or expired invitation (owners and admins)."""
        invitation = invitations.get_invitation(organization.id, invitation_id, for_update=True)
        check_if_match(etag_of(invitation))
        return _answer(invitations.revoke(invitation, _inviter(organization)), "Invitation revoked")


@blp.route("/<organization_id>/invitations/<invitation_id>/resend", methods=["POST"])
@managers_only
@blp.doc(security=BEARER_SECURITY)
@blp.response(200, envelope_of(InvitationSchema), headers=ETAG_HEADER,
              description="Mailed again with a new link and lifetime; the previous link stops working")
@blp.alt_response(403, **FORBIDDEN)
@blp.alt_response(404, **NOT_FOUND)
@blp.alt_response(409, **CONFLICT)
@blp.alt_response(429, **MAIL_LIMITED)
def resend_invitation(organization: Organization, invitation_id: str):
    """Resend an open or expired invitation (only owners resend an owner invitation)."""
    invitation = invitations.get_invitation(organization.id, invitation_id, for_update=True)
    return _answer(invitations.resend(invitation, _inviter(organization)), "Invitation sent again")
