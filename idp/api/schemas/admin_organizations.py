"""Schemas of /api/v1/admin/organizations: the platform's organizations, searchable and paginated."""
from __future__ import annotations

import marshmallow as ma

from idp.api.conventions import PageArgsSchema
from idp.api.schemas.text import line


class AdminOrganizationQuerySchema(PageArgsSchema):
    """Search and page of GET /api/v1/admin/organizations."""

    q = line(200, metadata={"description": "Organizations whose name or slug contains this text (case-insensitive)",
                            "example": "acme"})


class AdminOrganizationSchema(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String()
    slug = ma.fields.String()
    description = ma.fields.String(allow_none=True)
    member_count = ma.fields.Integer(metadata={"description": "Members of every role"})
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
