"""OAuth 2.0 / OIDC clients (relying parties), with the Authlib ClientMixin contract."""
from __future__ import annotations

from datetime import datetime

from authlib.oauth2.rfc6749 import ClientMixin
from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, event
from sqlalchemy.orm import Mapped, mapped_column, object_session

from idp.extensions import db
from idp.models.base import IdMixin, TimestampMixin, UTCDateTime, utcnow
from idp.security.secrets import check_client_secret

# Metadata names (RFC 7591 / OIDC Registration) that map one-to-one onto columns.
# Metadata stored as given, or cleared when a registration update leaves it out (RFC 7592 2.2).
OPTIONAL_METADATA = ("jwks", "jwks_uri", "logo_uri", "client_uri", "policy_uri", "tos_uri",
                     "backchannel_logout_uri", "frontchannel_logout_uri")
METADATA_COLUMNS = (
    "redirect_uris", "post_logout_redirect_uris", "grant_types", "response_types", "scope",
    "token_endpoint_auth_method", "id_token_signed_response_alg", *OPTIONAL_METADATA,
    "backchannel_logout_session_required", "frontchannel_logout_session_required",
)


class OAuthClient(IdMixin, TimestampMixin, ClientMixin, db.Model):
    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    # Salted SHA-256 (security.secrets.hash_client_secret); None for public clients.
    client_secret_hash: Mapped[str | None] = mapped_column(String(120))
    # The secret before the last rotation, accepted until previous_secret_expires_at (the grace period).
    previous_secret_hash: Mapped[str | None] = mapped_column(String(120))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("organizations.id", ondelete="SET NULL"), index=True)
    redirect_uris: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    grant_types: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    response_types: Mapped[list] = mapped_column(JSON, nullable=False, default=lambda: ["code"])
    scope: Mapped[str] = mapped_column(String(1000), nullable=False, default="openid")
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40), nullable=False, default="client_secret_basic")
    require_pkce: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    first_party: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(10), nullable=False, default="RS256")
    jwks: Mapped[dict | None] = mapped_column(JSON)
    jwks_uri: Mapped[str | None] = mapped_column(String(500))
    logo_uri: Mapped[str | None] = mapped_column(String(500))
    client_uri: Mapped[str | None] = mapped_column(String(500))
    policy_uri: Mapped[str | None] = mapped_column(String(500))
    tos_uri: Mapped[str | None] = mapped_column(String(500))
    # OpenID Connect Back-Channel Logout 1.0 section 2.2 and Front-Channel Logout 1.0 section 2.
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    backchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    frontchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    frontchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Policy: the ID token carries only the claims the `claims` parameter asks for, not the scope claims.
    minimal_id_token: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # Policy: issue refresh tokens even when offline_access was not requested.
    refresh_without_offline_access: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # RFC 7592 registration access token (SHA-256), for clients made by dynamic registration.
    registration_access_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Seconds; None means the global ACCESS_TOKEN_LIFETIME / REFRESH_TOKEN_LIFETIME.
    access_token_lifetime: Mapped[int | None] = mapped_column(Integer)
    refresh_token_lifetime: Mapped[int | None] = mapped_column(Integer)
    # Bumped by every UPDATE of the row (see _next_version): the management API's ETag. updated_at
    # alone can repeat when two writes fall in one clock tick.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def scopes(self) -> list[str]:
        return self.scope.split()

    @property
    def client_metadata(self) -> dict:
        """The registered metadata, named as in RFC 7591 / OIDC Dynamic Client Registration."""
        data = {name: getattr(self, name) for name in METADATA_COLUMNS}
        data["client_name"] = self.name
        return {k: v for k, v in data.items() if v is not None}

    @property
    def client_info(self) -> dict:
        issued = self.registered_at or self.created_at
        return {"client_id": self.client_id, "client_id_issued_at": int(issued.timestamp()) if issued else 0}

    # -- Authlib ClientMixin --
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Exact matching: the request must always name its redirect URI.
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = set(self.scopes)
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in (self.redirect_uris or [])

    def check_client_secret(self, client_secret: str) -> bool:
        """The current secret, or the one before the last rotation while its grace period lasts.
        Both hashes are always compared (each in constant time), so timing tells neither apart."""
        current = check_client_secret(self.client_secret_hash, client_secret)
        previous = check_client_secret(self.previous_secret_hash, client_secret)
        return current or (previous and self.previous_secret_expires_at is not None
                           and utcnow() < self.previous_secret_expires_at)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return self.is_active and method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type in (self.response_types or [])

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in (self.grant_types or [])


@event.listens_for(OAuthClient, "before_update")
def _next_version(mapper, connection, target: OAuthClient) -> None:
    """Every real change of a client row gets a new version (and so a new ETag), whoever makes it."""
    session = object_session(target)
    if session is not None and session.is_modified(target, include_collections=False):
        target.version = (target.version or 0) + 1
