"""Schemas of /api/v1/organizations: organizations, members, roles."""
from __future__ import annotations

import marshmallow as ma

from idp.api.schemas.text import PLAIN_TEXT_PATTERN, TrimmedString, line, validate_plain_text
from idp.models import Role

ROLES = [role.value for role in Role]
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


def slug_field(**kwargs) -> ma.fields.String:
    return ma.fields.String(validate=[
        ma.validate.Length(min=1, max=100),
        ma.validate.Regexp(SLUG_PATTERN, error="Use lowercase letters, digits and single hyphens."),
    ], metadata={"description": "URL name, unique; derived from the name when omitted", "example": "acme-corp"},
        **kwargs)


def description_field() -> TrimmedString:
    return TrimmedString(allow_none=True, validate=[ma.validate.Length(max=1000), validate_plain_text],
                         metadata={"description": "Free text, up to 1000 characters",
                                   "pattern": PLAIN_TEXT_PATTERN})


def role_field(**kwargs) -> ma.fields.String:
    return ma.fields.String(validate=ma.validate.OneOf(ROLES), metadata={"enum": ROLES}, **kwargs)


class OrganizationCreateSchema(ma.Schema):
    name = line(200, required=True, metadata={"description": "Display name", "example": "Acme Corp"})
    slug = slug_field()
    description = description_field()
    owner_email = ma.fields.Email(validate=ma.validate.Length(max=254), metadata={
        "description": "The first owner, by the email of an existing account (platform admins; a platform-wide "
                       "service account must name the owner); by default the caller"})
    owner_user_id = ma.fields.String(validate=ma.validate.Length(min=1, max=36), metadata={
        "description": "The first owner, by account id (or give owner_email)"})

    @ma.validates_schema
    def at_most_one_owner(self, data: dict, **kwargs) -> None:
        if "owner_email" in data and "owner_user_id" in data:
            raise ma.ValidationError("Give at most one of owner_email or owner_user_id.")


class OrganizationUpdateSchema(ma.Schema):
    name = line(200, metadata={"description": "Display name"})
    slug = slug_field()
    description = description_field()

    @ma.validates_schema
    def require_a_change(self, data: dict, **kwargs) -> None:
        if not data:
            raise ma.ValidationError("Give at least one of name, slug, description.")


class OrganizationSchema(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String()
    slug = ma.fields.String()
    description = ma.fields.String(allow_none=True)
    role = ma.fields.String(allow_none=True, metadata={
        "description": "The caller's role here (an organization's service account is an admin); null for a "
                       "platform admin or platform-wide service account who is not a member", "enum": ROLES})
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class MemberAddSchema(ma.Schema):
    email = ma.fields.Email(validate=ma.validate.Length(max=254),
                            metadata={"description": "Email of an existing account (or give user_id)"})
    user_id = ma.fields.String(validate=ma.validate.Length(min=1, max=36),
                               metadata={"description": "Id of an existing account (or give email)"})
    role = role_field(load_default=Role.MEMBER.value)

    @ma.validates_schema
    def require_one_identity(self, data: dict, **kwargs) -> None:
        if ("email" in data) == ("user_id" in data):
            raise ma.ValidationError("Give exactly one of email or user_id.")


class RoleUpdateSchema(ma.Schema):
    role = role_field(required=True)


class MemberSchema(ma.Schema):
    user_id = ma.fields.String()
    email = ma.fields.String(attribute="user.email")
    name = ma.fields.String(attribute="user.name")
    role = ma.fields.String(metadata={"enum": ROLES})
    joined_at = ma.fields.DateTime(attribute="created_at")
