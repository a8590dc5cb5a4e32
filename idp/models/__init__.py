"""SQLAlchemy models, one module per aggregate. Importing this package registers every table."""
from idp.models.account_token import AccountToken, TokenPurpose
from idp.models.audit import AuditEvent
from idp.models.authorization_request import AuthorizationRequest
from idp.models.base import utcnow
from idp.models.client import OAuthClient
from idp.models.consent import Consent
from idp.models.counter import Counter
from idp.models.contact import ContactEnquiry, DeliveryStatus, EnquiryType
from idp.models.grant import AuthorizationCode
from idp.models.invitation import Invitation, InvitationStatus
from idp.models.logout_delivery import LogoutDelivery, LogoutDeliveryStatus
from idp.models.organization import Membership, Organization, Role
from idp.models.session import Session, SessionKind, SessionStatus
from idp.models.token import AccessToken, InitialAccessToken, RefreshToken
from idp.models.upstream import (FederatedIdentity, PendingLink, SeenAssertion, Upstream, UpstreamKind,
                                 UpstreamLogin)
from idp.models.user import User

__all__ = [
    "AccessToken", "AuthorizationCode", "AuthorizationRequest", "Consent", "Counter", "InitialAccessToken",
    "RefreshToken",
    "AuditEvent", "ContactEnquiry", "DeliveryStatus", "EnquiryType", "LogoutDelivery", "LogoutDeliveryStatus",
    "Membership", "OAuthClient",
    "Organization", "Role", "Session", "SessionKind", "SessionStatus", "User", "utcnow",
    "Invitation", "InvitationStatus",
    "FederatedIdentity", "PendingLink", "SeenAssertion", "Upstream", "UpstreamKind", "UpstreamLogin",
]
