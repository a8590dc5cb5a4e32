"""Issued tokens: a row per access token jti (so revocation is honoured) and hashed refresh tokens.

`grant_id` is the authorization code's id: the family of every token descending from one code,
revoked as a whole on code replay or refresh-token reuse (RFC 6749 4.1.2, RFC 9700 4.14).
"""
from __future__ import annotations

from datetime import datetime

from authlib.oauth2.rfc6749 import TokenMixin
from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models.base import IdMixin, UTCDateTime, utcnow
from idp.models.client import OAuthClient
from idp.models.session import Session, SessionStatus
from idp.models.user import User


class TokenBinding(TokenMixin):
    """What Authlib reads of a token (client, scope, lifetime, expiry), for the models and for the row a
    refresh request redeems (services.tokens.RedeemableRefreshToken)."""

    def check_client(self, client: OAuthClient) -> bool:
        return self.oauth_client_id == client.id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int((self.expires_at - self.issued_at).total_seconds())

    def is_expired(self) -> bool:
        return utcnow() >= self.expires_at


class _IssuedToken(IdMixin, TokenBinding):
    token_type_hint = ""

    oauth_client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"), nullable=False, index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str | None] = mapped_column(String(36), index=True)
    grant_id: Mapped[str | None] = mapped_column(String(36), index=True)
    scope: Mapped[str] = mapped_column(String(1000), nullable=False, default="")
    claims: Mapped[dict | None] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    # Indexed for the purge job's batches (migration 0010).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def session_revoked(self) -> bool:
        """The SSO session this token was issued under was ended on purpose (logout, revocation).

        An idle-expired session does not count: tokens outlive the browser's idle window.
        """
        return self.session is not None and self.session.status == SessionStatus.REVOKED.value

    def user_disabled(self) -> bool:
        """The token's end user was disabled: none of their tokens works any more (introspection reads it
        inactive), even one a revocation missed."""
        return self.user is not None and not self.user.is_active

    def is_revoked(self) -> bool:
        return self.revoked_at is not None or self.session_revoked() or self.user_disabled()

    def get_user(self) -> User | None:
        return self.user

    def get_client(self) -> OAuthClient:
        return self.client


class AccessToken(_IssuedToken, db.Model):
    __tablename__ = "access_tokens"
    token_type_hint = "access_token"

    jti: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)

    client: Mapped[OAuthClient] = relationship()
    user: Mapped[User | None] = relationship()
    session: Mapped[Session | None] = relationship(primaryjoin="foreign(AccessToken.session_id) == Session.id",
                                                   viewonly=True)


class RefreshToken(_IssuedToken, db.Model):
    __tablename__ = "refresh_tokens"
    token_type_hint = "refresh_token"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list | None] = mapped_column(JSON)
    # Set when this token was exchanged; a second use is reuse and revokes the family.
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    client: Mapped[OAuthClient] = relationship()
    user: Mapped[User | None] = relationship()
    session: Mapped[Session | None] = relationship(primaryjoin="foreign(RefreshToken.session_id) == Session.id",
                                                   viewonly=True)

    def is_revoked(self) -> bool:
        return (self.revoked_at is not None or self.rotated_at is not None or self.session_revoked()
                or self.user_disabled())


class InitialAccessToken(IdMixin, db.Model):
    """RFC 7591 3: a bearer token an admin issues to let one party register clients."""

    __tablename__ = "initial_access_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
