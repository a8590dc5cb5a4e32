"""SQLAlchemy models, one module per aggregate. Importing this package registers every table."""
from idp.models.audit import AuditEvent
from idp.models.base import utcnow
from idp.models.client import OAuthClient
from idp.models.contact import ContactEnquiry, DeliveryStatus, EnquiryType
from idp.models.organization import Membership, Organization, Role
from idp.models.session import Session, SessionKind, SessionStatus
from idp.models.user import User

__all__ = [
    "AuditEvent", "ContactEnquiry", "DeliveryStatus", "EnquiryType", "Membership", "OAuthClient",
    "Organization", "Role", "Session", "SessionKind", "SessionStatus", "User", "utcnow",
]
