"""Self-service registration with email verification by a single-use link (24 h life).

The page answers the same whether or not the address is already registered: a new address gets
an account and a verification link; a taken one gets a "you already have an account" mail, after the
same password-hashing work, so neither the answer nor its timing tells the two apart. Both mails
leave after the response (account_mail), so SMTP latency cannot tell them apart either.
Unverified users may sign in; relying parties see email_verified=false until the link is used.
"""
from __future__ import annotations

from idp.errors import ValidationError
from idp.models import TokenPurpose, User
from idp.security.passwords import hash_password, password_problems
from idp.services import accounts, audit, federated_identities
from idp.services.account_mail import recipient_can_receive, send_already_registered_mail, send_verification_mail
from idp.services.account_tokens import consume_token, issue_token


def start_registration(name: str, email: str, password: str) -> None:
    """Register a new account and mail its verification link, or mail the existing owner."""
    email = accounts.normalise_email(email)
    name = accounts.clean_name(name)  # checked before branching: a refusal must not depend on the address
    existing = accounts.find_user_by_email(email)
    if existing is None:
        user = accounts.register(email, password, name)
        send_verification(user, after_response=True)  # like the other branch's mail: no timing tell
        return
    problems = password_problems(password, email=email, name=name)
    if problems:
        raise ValidationError("The password does not meet the policy.", details={"password": problems})
    hash_password(password)  # the work a new account costs, so timing does not reveal the address
    audit.record("register.existing_email", actor_user_id=existing.id, target_type="user", target_id=existing.id)
    send_already_registered_mail(existing)


def send_verification(user: User, *, after_response: bool = False) -> bool:
    """Issue a fresh verification link for `user` (earlier ones stop working) and mail it.

    With `after_response` the mail leaves once the response is sent, and True means queued. Over the
    recipient's mail limit nothing is issued or sent (the earlier link keeps working) and it answers True.
    """
    if not recipient_can_receive(user):
        return True
    token = issue_token(user, TokenPurpose.VERIFY_EMAIL)
    audit.record("email.verification_sent", actor_user_id=user.id, target_type="user", target_id=user.id)
    return send_verification_mail(user, token, after_response=after_response)


def verify_email(token: str | None) -> User:
    """Use up a verification link and mark the address verified; BadRequest when it cannot be used."""
    user = consume_token(token, TokenPurpose.VERIFY_EMAIL)
    if not user.email_verified:  # identities linked while the address was unproven never proved it
        federated_identities.forget_unproven_identities(user, reason="address_verified")
    user.email_verified = True
    audit.record("email.verify", actor_user_id=user.id, target_type="user", target_id=user.id)
    return user
