"""Authorization codes, access-token records and refresh tokens: issue, look up, consume, revoke.

Codes and refresh tokens are stored as SHA-256 hashes only. Consuming is an atomic
UPDATE ... WHERE used IS NULL whose rowcount decides the single winner, so concurrent redemptions
on PostgreSQL let exactly one through.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import inspect, select, update
from sqlalchemy.orm import joinedload

from idp.extensions import db
from idp.models import AccessToken, AuthorizationCode, OAuthClient, RefreshToken, User, utcnow
from idp.security.secrets import hash_token, new_token

NO_SYNC = {"synchronize_session": False}


# -- authorization codes --
def create_code(client: OAuthClient, user: User, **binding) -> str:
    """Store a new single-use code bound to client, user and `binding`; returns the raw code."""
    code = new_token(32)
    now = utcnow()
    lifetime = current_app.config["AUTHORIZATION_CODE_LIFETIME"]
    db.session.add(AuthorizationCode(code_hash=hash_token(code), oauth_client_id=client.id, user_id=user.id,
                                     created_at=now, expires_at=now + timedelta(seconds=lifetime), **binding))
    db.session.flush()
    return code


def find_code(code: str, client: OAuthClient) -> AuthorizationCode | None:
    """The code row for `code` issued to `client` (used or not), or None."""
    query = (select(AuthorizationCode)
             .options(joinedload(AuthorizationCode.user), joinedload(AuthorizationCode.session))
             .where(AuthorizationCode.code_hash == hash_token(code)))
    row = db.session.scalars(query).first()
    return row if row is not None and row.oauth_client_id == client.id else None


def consume_code(code: AuthorizationCode) -> bool:
    """Mark the code used; True only for the one caller that flipped it (atomic)."""
    result = db.session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.id == code.id, AuthorizationCode.used_at.is_(None))
        .values(used_at=utcnow()), execution_options=NO_SYNC)
    return result.rowcount == 1


# -- access tokens (JWTs; a row per jti so revocation is honoured) --
def record_access_token(client: OAuthClient, user: User | None, jti: str, scope: str, expires_at: datetime,
                        **binding) -> AccessToken:
    """Record an issued access token by jti, so revocation is honoured on use."""
    row = AccessToken(jti=jti, oauth_client_id=client.id, user_id=user.id if user else None, scope=scope,
                      issued_at=utcnow(), expires_at=expires_at, **binding)
    db.session.add(row)
    return row


def find_access_token(jti: str | None) -> AccessToken | None:
    """The record of access token `jti`, or None."""
    if not jti:
        return None
    return db.session.scalars(select(AccessToken).where(AccessToken.jti == jti)).first()


def unrecorded_machine_token(claims: dict, client: OAuthClient) -> AccessToken:
    """A transient record for a verified client-credentials token, which is stored only once revoked."""
    return AccessToken(jti=claims["jti"], oauth_client_id=client.id, client=client, user_id=None,
                       scope=claims.get("scope", ""), issued_at=datetime.fromtimestamp(claims["iat"], timezone.utc),
                       expires_at=datetime.fromtimestamp(claims["exp"], timezone.utc))


# -- refresh tokens (opaque, hashed, rotated on every use) --
def create_refresh_token(client: OAuthClient, user: User, scope: str, **binding) -> str:
    """Store a new refresh token (hash only); returns the raw token."""
    token = new_token(32)
    lifetime = current_app.config["REFRESH_TOKEN_LIFETIME"]
    now = utcnow()
    db.session.add(RefreshToken(token_hash=hash_token(token), oauth_client_id=client.id, user_id=user.id, scope=scope,
                                issued_at=now, expires_at=now + timedelta(seconds=lifetime), **binding))
    return token


def find_refresh_token(token: str | None) -> RefreshToken | None:
    """The refresh-token row behind `token` (any state), or None."""
    if not token:
        return None
    query = (select(RefreshToken)
             .options(joinedload(RefreshToken.user), joinedload(RefreshToken.session))
             .where(RefreshToken.token_hash == hash_token(token)))
    return db.session.scalars(query).first()


def rotate_refresh_token(row: RefreshToken) -> bool:
    """Mark `row` exchanged; True only for the one caller that flipped it (atomic)."""
    result = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.rotated_at.is_(None), RefreshToken.revoked_at.is_(None))
        .values(rotated_at=utcnow()), execution_options=NO_SYNC)
    return result.rowcount == 1


# -- revocation --
def _revoke_where(*criteria) -> int:
    now = utcnow()
    count = 0
    for model in (AccessToken, RefreshToken):
        query = update(model).where(model.revoked_at.is_(None), *[c(model) for c in criteria]).values(revoked_at=now)
        count += db.session.execute(query, execution_options=NO_SYNC).rowcount
    return count


def revoke_grant(grant_id: str) -> int:
    """Revoke every access and refresh token descending from one authorization code."""
    return _revoke_where(lambda m: m.grant_id == grant_id)


def revoke_session_tokens(session_id: str) -> int:
    """Revoke every token issued under one SSO session (logout)."""
    return _revoke_where(lambda m: m.session_id == session_id)


def revoke_client_user_tokens(client: OAuthClient, user: User) -> int:
    """Revoke every token `client` holds for `user` (consent withdrawn)."""
    return _revoke_where(lambda m: m.oauth_client_id == client.id, lambda m: m.user_id == user.id)


def revoke_client_tokens(client: OAuthClient) -> int:
    """Revoke every token issued to `client` (client deleted)."""
    return _revoke_where(lambda m: m.oauth_client_id == client.id)


def revoke_access_token(row: AccessToken) -> None:
    """Revoke one access token; an unrecorded client-credentials token is recorded as revoked."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    if inspect(row).transient:
        db.session.add(row)


def revoke_refresh_token(row: RefreshToken) -> None:
    """RFC 7009 2.1: revoking a refresh token also revokes the access tokens of its grant."""
    if row.grant_id:
        revoke_grant(row.grant_id)
    elif row.revoked_at is None:
        row.revoked_at = utcnow()


def purge_expired(now: datetime | None = None) -> int:
    """Delete codes and token records past their expiry (the job runner calls this)."""
    now = now or utcnow()
    count = 0
    for model in (AuthorizationCode, AccessToken, RefreshToken):
        count += db.session.execute(model.__table__.delete().where(model.expires_at < now)).rowcount
    return count

