"""Schemas of /api/v1/organizations/<id>/invitations. The mailed token and its hash are never fields."""
from __future__ import annotations

import marshmallow as ma

from idp.api.conventions import PageArgsSchema, StrictSchema
from idp.api.schemas.organizations import ROLES
from idp.models import InvitationStatus, Role

STATUSES = [status.value for status in InvitationStatus]


class InvitationCreateSchema(StrictSchema):
    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=254),
                            metadata={"description": "The address to invite; it need not have an account yet",
                                      "example": "ada@example.com"})
    role = ma.fields.String(load_default=Role.MEMBER.value, validate=ma.validate.OneOf(ROLES),
                            metadata={"enum": ROLES, "description": "Role on joining; only owners invite owners"})


class InvitationListQuerySchema(PageArgsSchema):
    status = ma.fields.String(validate=ma.validate.OneOf(STATUSES),
                              metadata={"enum": STATUSES, "description": "Only invitations in this status"})


class InvitationSchema(ma.Schema):
    id = ma.fields.String()
    organization_id = ma.fields.String()
    email = ma.fields.String(metadata={"description": "The invited address (canonical form)"})
    role = ma.fields.String(metadata={"enum": ROLES})
    status = ma.fields.String(metadata={"enum": STATUSES, "description": "open until accepted, revoked or expired"})
    invited_by = ma.fields.String(allow_none=True, metadata={"description": "User id of the inviter; null for a "
                                                                            "service account or a deleted user"})
    created_at = ma.fields.DateTime()
    expires_at = ma.fields.DateTime(metadata={"description": "When the current link stops working"})
    last_sent_at = ma.fields.DateTime()
    send_count = ma.fields.Integer(metadata={"description": "Mails sent: 1, plus one per resend"})
    accepted_at = ma.fields.DateTime(allow_none=True)
    accepted_by = ma.fields.String(allow_none=True, metadata={"description": "User id of the account that joined"})
    revoked_at = ma.fields.DateTime(allow_none=True)
