"""Authorization codes: random, stored hashed, single use, bound to client, redirect URI, PKCE,
nonce and the SSO session. The code's id names the grant: every token issued from it carries it."""
from __future__ import annotations

from datetime import datetime

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin
from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.base import IdMixin, UTCDateTime, utcnow


class CodeBinding(AuthorizationCodeMixin):
    """What Authlib reads of a code (redirect URI, scope, nonce, auth_time, acr, amr), for the model
    and for the row a token request redeems (services.tokens.RedeemableCode)."""

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.auth_time.timestamp())

    def get_acr(self) -> str | None:
        return self.acr

    def get_amr(self) -> list | None:
        return self.amr


class AuthorizationCode(IdMixin, CodeBinding, db.Model):
    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    oauth_client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"), nullable=False, index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    # The browser session (OIDC `sid`); plain id so the code survives the session row's cleanup.
    session_id: Mapped[str | None] = mapped_column(String(36), index=True)
    redirect_uri: Mapped[str] = mapped_column(String(500), nullable=False)
    scope: Mapped[str] = mapped_column(String(1000), nullable=False, default="")
    nonce: Mapped[str | None] = mapped_column(String(500))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    claims: Mapped[dict | None] = mapped_column(JSON)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    # Indexed for the purge job's batches (migration 0010).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
