"""Emailed single-use tokens: random, stored hashed, with an expiry, consumed atomically."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from idp.errors import BadRequest
from idp.extensions import db
from idp.models import AccountToken, TokenPurpose, User, utcnow
from idp.security.secrets import hash_token, new_token

# How long an emailed link works.
LIFETIMES = {
    TokenPurpose.VERIFY_EMAIL: timedelta(hours=24),
    TokenPurpose.RESET_PASSWORD: timedelta(minutes=30),
    TokenPurpose.SET_PASSWORD: timedelta(hours=72),
}
INVALID_LINK = "This link is invalid, has expired or was already used. Ask for a new one."


def issue_token(user: User, purpose: TokenPurpose) -> str:
    """A fresh token for `user` and `purpose`; earlier unused ones of that purpose stop working."""
    now = utcnow()
    db.session.execute(
        update(AccountToken)
        .where(AccountToken.user_id == user.id, AccountToken.purpose == purpose.value,
               AccountToken.used_at.is_(None))
        .values(used_at=now),
        execution_options={"synchronize_session": False},
    )
    token = new_token()
    db.session.add(AccountToken(user_id=user.id, purpose=purpose.value, token_hash=hash_token(token),
                                email=user.email, created_at=now, expires_at=now + LIFETIMES[purpose]))
    db.session.flush()
    return token


def peek_token(token: str | None, purpose: TokenPurpose) -> AccountToken:
    """The live token row behind `token` without using it up; BadRequest when it cannot be used."""
    row = _find(token, purpose)
    if row is None or row.used_at is not None or row.expires_at <= utcnow() or row.email != row.user.email:
        raise BadRequest(INVALID_LINK)
    return row


def consume_token(token: str | None, purpose: TokenPurpose) -> User:
    """Use `token` up (one atomic UPDATE, so two concurrent uses cannot both win); returns its user."""
    row = peek_token(token, purpose)
    result = db.session.execute(
        update(AccountToken)
        .where(AccountToken.id == row.id, AccountToken.used_at.is_(None))
        .values(used_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount != 1:
        raise BadRequest(INVALID_LINK)
    return row.user


def _find(token: str | None, purpose: TokenPurpose) -> AccountToken | None:
    if not token or len(token) > 200:
        return None
    query = select(AccountToken).where(AccountToken.token_hash == hash_token(token),
                                       AccountToken.purpose == purpose.value)
    return db.session.scalars(query).first()
