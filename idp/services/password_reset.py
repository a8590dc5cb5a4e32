"""Forgotten passwords: a single-use, hashed, 30-minute link by email; a reset ends every session.
The same machinery sets the first password of an account a platform admin created (an invitation).

Asking for a reset answers the same whether or not the address has an account.
"""
from __future__ import annotations

from flask import current_app

from idp.errors import BadRequest, ValidationError
from idp.models import TokenPurpose, User, utcnow
from idp.security.passwords import hash_password, password_problems
from idp.services import accounts, audit, federated_identities, session_end
from idp.services.account_mail import recipient_can_receive, send_reset_mail
from idp.services.account_tokens import INVALID_LINK, consume_token, issue_token, peek_token


def request_reset(email: str) -> None:
    """Mail a reset link when an active account has this address and it is under the mail limit;
    otherwise do nothing visible."""
    user = accounts.find_user_by_email(email or "")
    if user is None or not user.is_active:
        current_app.logger.info("password reset asked for an address without an active account")
        return
    if not recipient_can_receive(user):  # the link the user already has keeps working
        return
    token = issue_token(user, TokenPurpose.RESET_PASSWORD)
    audit.record("password.reset_requested", actor_user_id=user.id, target_type="user", target_id=user.id)
    send_reset_mail(user, token)


def check_reset_link(token: str | None, purpose: TokenPurpose = TokenPurpose.RESET_PASSWORD) -> User:
    """The active user a still-usable reset (or invitation) link belongs to, the link not used up;
    BadRequest if none: a disabled account's links stop working."""
    user = peek_token(token, purpose).user
    if not user.is_active:
        raise BadRequest(INVALID_LINK)
    return user


def reset_password(token: str | None, new_password: str,
                   purpose: TokenPurpose = TokenPurpose.RESET_PASSWORD) -> User:
    """Set a new password through a reset link (or, with TokenPurpose.SET_PASSWORD, the first password
    through an invitation link), end every session of the user and audit it (password.reset, password.set).

    The link proves the user reads mail at their address, so the address counts as verified.
    """
    user = check_reset_link(token, purpose)
    problems = password_problems(new_password, email=user.email, name=user.name)
    if problems:
        raise ValidationError("The password does not meet the policy.", details={"password": problems})
    consume_token(token, purpose)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    if not user.email_verified:  # identities linked while the address was unproven never proved it
        federated_identities.forget_unproven_identities(user, reason="address_verified")
    user.email_verified = True
    ended = session_end.end_all_sessions(user, reason="password_reset")
    action = "password.set" if purpose is TokenPurpose.SET_PASSWORD else "password.reset"
    audit.record(action, actor_user_id=user.id, target_type="user", target_id=user.id,
                 details={"sessions_ended": ended})
    return user
