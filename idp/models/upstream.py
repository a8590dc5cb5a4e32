"""Upstream identity providers (federation) and the identities users hold at them."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models.base import IdMixin, TimestampMixin, UTCDateTime, utcnow
from idp.models.user import User


class UpstreamKind(str, enum.Enum):
    OIDC = "oidc"
    GOOGLE = "google"
    MICROSOFT = "microsoft"
    GITHUB = "github"
    SAML = "saml"


class Upstream(IdMixin, TimestampMixin, db.Model):
    """One configured upstream: platform-wide (organization_id null) or an organization's own."""

    __tablename__ = "upstreams"

    slug: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    # Lower-case domains this upstream answers for (home-realm discovery; trusted e-mail for an organization's).
    email_domains: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    scopes: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    # A password sign-in for an address of email_domains is refused: its users sign in here only.
    enforce_for_domains: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Organization role from an upstream claim or attribute, e.g. {"claim": "groups", "map": {"idp-admins": "admin"}}.
    role_mapping: Mapped[dict | None] = mapped_column(JSON)
    # Kind-specific, non-secret settings (issuer, client_id, tenant, SAML IdP metadata ...), as validated.
    settings: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    # Fernet ciphertext (ENCRYPTION_KEY) of a JSON object: client_secret, SP private key. Never returned.
    secrets_encrypted: Mapped[str | None] = mapped_column(Text)


class FederatedIdentity(IdMixin, db.Model):
    """A user's identity at an upstream: the key is (upstream, upstream subject), never the e-mail."""

    __tablename__ = "federated_identities"
    __table_args__ = (UniqueConstraint("upstream_id", "subject", name="uq_federated_identities_upstream_subject"),)

    upstream_id: Mapped[str] = mapped_column(ForeignKey("upstreams.id", ondelete="CASCADE"), nullable=False, index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    # The address the upstream last reported (information only: never a lookup key).
    email: Mapped[str | None] = mapped_column(String(254))
    first_signed_in_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    last_signed_in_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    upstream: Mapped[Upstream] = relationship()
    user: Mapped[User] = relationship()


class UpstreamLogin(IdMixin, db.Model):
    """One upstream sign-in this IdP started: the `state` (or SAML RelayState) it sent, bound to the
    browser that started it and used once."""

    __tablename__ = "upstream_logins"

    state_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    # SHA-256 of the random binding cookie the starting browser got.
    browser_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    upstream_id: Mapped[str] = mapped_column(ForeignKey("upstreams.id", ondelete="CASCADE"), nullable=False, index=True)
    # The pending authorization request to resume afterwards, if any.
    authorization_request_id: Mapped[str | None] = mapped_column(String(36))
    # "sign_in", or "link" (a signed-in user adds a sign-in method; user_id says who).
    purpose: Mapped[str] = mapped_column(String(16), nullable=False, default="sign_in")
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Fernet ciphertext of what the connector saved (nonce, PKCE verifier, SAML request id).
    saved_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PendingLink(IdMixin, db.Model):
    """An upstream identity whose address belongs to an existing local account: it is linked only
    once the account's owner proves control (password, or a single-use link mailed to the address)."""

    __tablename__ = "pending_links"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    upstream_id: Mapped[str] = mapped_column(ForeignKey("upstreams.id", ondelete="CASCADE"), nullable=False)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    # What the upstream said (profile, e-mail, verification), applied once linked.
    identity: Mapped[dict] = mapped_column(JSON, nullable=False)
    # SHA-256 of the browser binding cookie: only the browser that came back from the upstream confirms.
    browser_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # SHA-256 of the single-use token mailed to the account's address, once one was sent.
    mail_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    authorization_request_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()
    upstream: Mapped[Upstream] = relationship()


class SeenAssertion(db.Model):
    """Assertions already used, until they expire (replay cache without Redis): SAML assertion ids and
    client assertion jtis, each key hashed with its namespace (the upstream, or client-assertion)."""

    __tablename__ = "seen_assertions"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
