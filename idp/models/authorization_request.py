"""A pending authorization request, kept server-side while the user signs in and consents.

Stored in the database (not a cookie or process memory) so every worker can resume it; the login
and consent pages receive only its opaque id.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models.base import UTCDateTime, utcnow
from idp.models.client import OAuthClient


class AuthorizationRequest(db.Model):
    __tablename__ = "authorization_requests"

    # Opaque random id (not a uuid): it is the only thing the login page receives.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    oauth_client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"), nullable=False, index=True)
    # The validated parameters this server reads (request object merged in), each within its limit
    # (idp.oidc.authorization_bounds: unknown parameters are never kept), replayed on resume.
    params: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    denied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    client: Mapped[OAuthClient] = relationship()
