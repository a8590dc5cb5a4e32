"""Emailed single-use tokens (idp.services.account_tokens)."""
from __future__ import annotations

import pytest
import time_machine
from sqlalchemy import select

from idp.errors import BadRequest
from idp.extensions import db
from idp.models import AccountToken, TokenPurpose, User
from idp.security.secrets import hash_token
from idp.services.account_tokens import consume_token, issue_token, peek_token


@pytest.fixture
def user(ctx, factories):
    return db.session.get(User, factories.user().id)


def test_token_is_stored_hashed_and_consumed_once(user):
    """The row keeps only the SHA-256; the token works once."""
    token = issue_token(user, TokenPurpose.RESET_PASSWORD)
    row = db.session.scalars(select(AccountToken)).one()
    assert row.token_hash == hash_token(token) and token not in (row.token_hash, row.email)
    assert consume_token(token, TokenPurpose.RESET_PASSWORD).id == user.id
    with pytest.raises(BadRequest):
        consume_token(token, TokenPurpose.RESET_PASSWORD)


def test_token_is_bound_to_its_purpose(user):
    """A verification token cannot reset a password."""
    token = issue_token(user, TokenPurpose.VERIFY_EMAIL)
    with pytest.raises(BadRequest):
        peek_token(token, TokenPurpose.RESET_PASSWORD)


def test_reset_token_expires_after_30_minutes(user):
    """RESET_PASSWORD tokens live 30 minutes."""
    with time_machine.travel("2026-03-01 10:00:00", tick=False) as clock:
        token = issue_token(user, TokenPurpose.RESET_PASSWORD)
        clock.shift(30 * 60)
        with pytest.raises(BadRequest):
            peek_token(token, TokenPurpose.RESET_PASSWORD)


def test_token_dies_when_the_address_changes(user):
    """A token mailed to an old address stops working once the account's email changes."""
    token = issue_token(user, TokenPurpose.VERIFY_EMAIL)
    user.email = "new-address@example.com"
    with pytest.raises(BadRequest):
        peek_token(token, TokenPurpose.VERIFY_EMAIL)


@pytest.mark.parametrize("token", [None, "", "x" * 500, "not-issued"])
def test_missing_or_odd_tokens_are_refused(ctx, token):
    """Empty, overlong and unknown tokens are refused with BadRequest."""
    with pytest.raises(BadRequest):
        peek_token(token, TokenPurpose.VERIFY_EMAIL)
