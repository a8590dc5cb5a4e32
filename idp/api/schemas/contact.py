"""Schemas of POST /api/v1/contact."""
from __future__ import annotations

import marshmallow as ma

from idp.api.schemas.text import PLAIN_TEXT_PATTERN, TrimmedString, line, validate_plain_text
from idp.models import EnquiryType

ENQUIRY_TYPES = [kind.value for kind in EnquiryType]


class ContactRequestSchema(ma.Schema):
    name = line(200, required=True, metadata={"description": "Who is writing", "example": "Ada Lovelace"})
    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=254),
                            metadata={"description": "Where to answer", "example": "ada@example.com"})
    type = ma.fields.String(required=True, validate=ma.validate.OneOf(ENQUIRY_TYPES),
                            metadata={"description": "What the enquiry is about", "enum": ENQUIRY_TYPES})
    message = TrimmedString(required=True, validate=[ma.validate.Length(min=1, max=5000), validate_plain_text],
                            metadata={"description": "The enquiry, up to 5000 characters",
                                      "pattern": PLAIN_TEXT_PATTERN})
    company = line(200, allow_none=True, min_length=0, metadata={"description": "Company, optional"})


class ContactReceiptSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "Reference of the stored enquiry"})
    type = ma.fields.String()
    created_at = ma.fields.DateTime()
