"""POST /api/v1/contact: the public contact form (no authentication, rate limited per client IP)."""
from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint

from idp.api.envelope import ErrorEnvelopeSchema, envelope_of, ok
from idp.api.schemas.contact import ContactReceiptSchema, ContactRequestSchema
from idp.extensions import limiter
from idp.services import contact

blp = Blueprint("contact", __name__, url_prefix="/api/v1/contact", description="Public contact form")

RETRY_AFTER_HEADER = {"Retry-After": {"description": "Seconds until another request is allowed",
                                      "schema": {"type": "integer"}}}


def contact_limit() -> str:
    return current_app.config["RATELIMIT_CONTACT"]


@blp.route("", methods=["POST"])
@limiter.limit(contact_limit)
@blp.arguments(ContactRequestSchema)
@blp.response(201, envelope_of(ContactReceiptSchema), description="The enquiry was received")
@blp.alt_response(429, schema=ErrorEnvelopeSchema, headers=RETRY_AFTER_HEADER,
                  description="Too many enquiries from this address (RATELIMIT_CONTACT, default 5 per hour)")
def submit_contact(data: dict):
    """Submit a contact enquiry (demo, sales, general or support).

    The enquiry is stored and mailed to the team; if mail is down it is kept and sent later.
    """
    enquiry = contact.submit_enquiry(data["name"], data["email"], data["type"], data["message"],
                                     data.get("company"))
    receipt = {"id": enquiry.id, "type": enquiry.type, "created_at": enquiry.created_at}
    return ok(receipt, "Thank you; your enquiry was received.", code=201)
