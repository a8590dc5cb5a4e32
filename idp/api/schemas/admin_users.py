"""Schemas of /api/v1/admin/users: user accounts as a platform admin sees and changes them.

Requests are strict (an unknown field, `password` included, is a 422 naming it): an admin never sets a
user's password; the user chooses it through the mailed link.
"""
from __future__ import annotations

from datetime import timezone

import marshmallow as ma

from idp.api.conventions import PageArgsSchema, StrictSchema
from idp.api.schemas.organizations import SLUG_PATTERN
from idp.api.schemas.text import line

STATUSES = ["active", "disabled"]
SESSION_KINDS = ["browser", "api"]


class AdminUserListQuerySchema(PageArgsSchema):
    q = line(254, metadata={"description": "Case-insensitive part of the e-mail address or the name"})
    status = ma.fields.String(validate=ma.validate.OneOf(STATUSES), metadata={
        "enum": STATUSES, "description": "active, or disabled (cannot sign in)"})
    organization_id = ma.fields.String(validate=ma.validate.Length(min=1, max=36), metadata={
        "description": "Only members of this organization"})
    upstream = ma.fields.String(validate=[ma.validate.Length(min=1, max=64), ma.validate.Regexp(SLUG_PATTERN)],
                                metadata={"pattern": SLUG_PATTERN,
                                          "description": "Only users with an identity linked at this upstream (slug)"})
    created_since = ma.fields.AwareDateTime(default_timezone=timezone.utc, metadata={
        "description": "Only users created at or after this instant (ISO 8601 with a UTC offset)"})


class AdminUserCreateSchema(StrictSchema):
    email = line(254, required=True, metadata={"description": "The new account's address; it gets the invitation",
                                               "example": "carol@example.com"})
    name = line(200, required=True, metadata={"description": "Display name", "example": "Carol"})


class AdminUserUpdateSchema(StrictSchema):
    name = line(200, metadata={"description": "Display name"})
    disabled = ma.fields.Boolean(metadata={
        "description": "true: the user signs in by no method, their sessions end and their tokens are revoked at "
                       "once; not for your own account nor the last active platform admin"})
    email_verified = ma.fields.Boolean(metadata={"description": "Whether the address counts as proven"})
    is_admin = ma.fields.Boolean(metadata={
        "description": "Platform admin rights; you cannot remove your own, nor the last active admin's"})

    @ma.validates_schema
    def require_a_change(self, data: dict, **kwargs) -> None:
        if not data:
            raise ma.ValidationError("Give at least one field to change.")


class AdminUserSchema(ma.Schema):
    id = ma.fields.String()
    email = ma.fields.String()
    name = ma.fields.String()
    email_verified = ma.fields.Boolean()
    disabled = ma.fields.Boolean(metadata={"description": "The account cannot sign in"})
    is_admin = ma.fields.Boolean(metadata={"description": "Platform admin"})
    has_password = ma.fields.Boolean(metadata={"description": "A password is set (false until an invitee "
                                                              "chooses one)"})
    last_login_at = ma.fields.DateTime(allow_none=True)
    password_changed_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class SessionClientSchema(ma.Schema):
    client_id = ma.fields.String()
    name = ma.fields.String()


class AdminSessionSchema(ma.Schema):
    id = ma.fields.String()
    kind = ma.fields.String(metadata={"enum": SESSION_KINDS, "description": "browser (SSO cookie) or api"})
    created_at = ma.fields.DateTime()
    last_seen_at = ma.fields.DateTime()
    expires_at = ma.fields.DateTime(metadata={"description": "End of the idle window (never past the absolute cap)"})
    ip_address = ma.fields.String(allow_none=True)
    user_agent = ma.fields.String(allow_none=True)
    idp = ma.fields.String(allow_none=True, metadata={"description": "Upstream slug of a federated sign-in"})
    amr = ma.fields.List(ma.fields.String(), allow_none=True)
    clients = ma.fields.List(ma.fields.Nested(SessionClientSchema), metadata={
        "description": "Relying parties that got a code or a token under this session"})


class LinkedIdentitySchema(ma.Schema):
    id = ma.fields.String()
    upstream_id = ma.fields.String()
    upstream_slug = ma.fields.String()
    upstream_kind = ma.fields.String()
    subject = ma.fields.String(metadata={"description": "The user's subject at the upstream"})
    email = ma.fields.String(allow_none=True, metadata={"description": "The address the upstream last reported"})
    linked_at = ma.fields.DateTime()
    last_signed_in_at = ma.fields.DateTime()


class SignInMethodsSchema(ma.Schema):
    password = ma.fields.Boolean(metadata={"description": "A password is set"})
    identities = ma.fields.List(ma.fields.Nested(LinkedIdentitySchema))


class SessionsRevokedSchema(ma.Schema):
    sessions_ended = ma.fields.Integer()
    tokens_revoked = ma.fields.Integer()


class UserDeletedSchema(ma.Schema):
    organizations_deleted = ma.fields.List(ma.fields.String(), metadata={
        "description": "Organizations the user was the only member of, deleted with the account"})
