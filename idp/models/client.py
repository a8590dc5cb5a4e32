"""OAuth 2.0 / OIDC clients (relying parties)."""
from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.base import IdMixin, TimestampMixin


class OAuthClient(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    # Salted SHA-256 (security.secrets.hash_client_secret); None for public clients.
    client_secret_hash: Mapped[str | None] = mapped_column(String(120))
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
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"
