"""Accounts: register, password sign-in, profile, password change, deletion.

Shared by the REST API and the hosted pages, so these functions take plain values, raise AppError
subclasses, return models, and only add/flush (the request commits once).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from idp.errors import Conflict, Forbidden, InvalidCredentials, SingleSignOnRequired, ValidationError
from idp.extensions import db
from idp.models import Membership, OAuthClient, Organization, Role, Session, User, utcnow
from idp.security.passwords import hash_password, password_problems, verify_password
from idp.services import audit, session_end, upstreams

MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 200
# Profile fields a user may change about themselves (OIDC standard claims, section 5.1).
PROFILE_FIELDS = ("name", "given_name", "family_name", "picture", "locale", "zoneinfo", "phone_number", "address")
DUPLICATE_EMAIL_MESSAGE = "An account cannot be created with this email address."


def canonical_email(raw: str) -> str:
    """The stored form of an email: trimmed, NFC-normalised, lower-cased."""
    return unicodedata.normalize("NFC", raw.strip()).lower()


def normalise_email(raw: str) -> str:
    """Validate an email address for a new account and return its canonical form."""
    candidate = (raw or "").strip()
    if len(candidate) > MAX_EMAIL_LENGTH:
        raise ValidationError(details={"email": [f"Email must be at most {MAX_EMAIL_LENGTH} characters."]})
    try:
        normalised = validate_email(candidate, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationError(details={"email": [str(exc)]}) from exc
    email = canonical_email(normalised)
    if len(email) > MAX_EMAIL_LENGTH:
        raise ValidationError(details={"email": [f"Email must be at most {MAX_EMAIL_LENGTH} characters."]})
    return email


def _check_password_policy(password: str, field: str, *, email: str, name: str | None) -> None:
    problems = password_problems(password, email=email, name=name)
    if problems:
        raise ValidationError("The password does not meet the policy.", details={field: problems})


def find_user_by_email(email: str) -> User | None:
    """The user with this (canonicalised) email, or None; text no email can be is not looked up."""
    email = canonical_email(email)
    if not email or len(email) > MAX_EMAIL_LENGTH or "\x00" in email:
        return None
    return db.session.scalars(select(User).where(User.email == email)).first()


def clean_name(name: str) -> str:
    """The trimmed display name; 422 on `name` when empty, too long or holding control characters."""
    name = (name or "").strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ValidationError(details={"name": [f"Name must be 1 to {MAX_NAME_LENGTH} characters."]})
    _refuse_control_characters({"name": name})
    return name


def _refuse_control_characters(changes: dict) -> None:
    """Refuse text with control characters (NUL would even fail on PostgreSQL) from any surface."""
    bad = {field: ["Control characters are not allowed."] for field, value in changes.items()
           if isinstance(value, str) and any(unicodedata.category(char) == "Cc" for char in value)}
    if bad:
        raise ValidationError(details=bad)


def _check_lengths(changes: dict) -> None:
    """Refuse strings longer than their column, so no surface can trigger a database error."""
    too_long = {}
    for field, value in changes.items():
        limit = getattr(User.__table__.c[field].type, "length", None)
        if isinstance(value, str) and limit and len(value.strip()) > limit:
            too_long[field] = [f"At most {limit} characters."]
    if too_long:
        raise ValidationError(details=too_long)


def register(email: str, password: str, name: str) -> User:
    """Create a password account; 403 when registration is off, 409 when the email is taken.

    Records the `register` audit event.
    """
    if not current_app.config["REGISTRATION_ENABLED"]:
        raise Forbidden("Registration is disabled.")
    email = normalise_email(email)
    name = clean_name(name)
    _check_password_policy(password, "password", email=email, name=name)
    if find_user_by_email(email) is not None:
        audit.record_failure("register", details={"reason": "email_taken"})
        raise Conflict(DUPLICATE_EMAIL_MESSAGE)
    user = User(email=email, name=name, password_hash=hash_password(password), email_verified=False,
                password_changed_at=utcnow())
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race; the request rolls back
        raise Conflict(DUPLICATE_EMAIL_MESSAGE) from exc
    audit.record("register", actor_user_id=user.id, target_type="user", target_id=user.id)
    return user


def authenticate_password(email: str, password: str, *, channel: str = "api") -> User:
    """The active user with this email and password, else 401 INVALID_CREDENTIALS.

    Unknown email, wrong password, no password set and inactive account all give the same error
    after one bcrypt check each, so neither the answer nor its timing tells them apart. Records
    the `login` audit event (success or failure, with the reason for operators only).
    """
    refuse_enforced_single_sign_on(email)
    user = find_user_by_email(email)
    password_ok = verify_password(password, user.password_hash if user is not None else None)
    reason = _login_refusal(user, password_ok)
    if reason is not None:
        user_id = user.id if user is not None else None
        audit.record_failure("login", actor_user_id=user_id, target_type="user" if user_id else None,
                             target_id=user_id, details={"reason": reason, "channel": channel})
        raise InvalidCredentials(detail=f"login refused: {reason}")
    user.last_login_at = utcnow()
    audit.record("login", actor_user_id=user.id, target_type="user", target_id=user.id,
                 details={"method": "pwd", "channel": channel})
    return user


def refuse_enforced_single_sign_on(email: str) -> None:
    """403 SSO_REQUIRED when an upstream enforces itself for this address's domain: its users sign in
    there only, never with a password here (the same answer whether or not an account exists)."""
    realm = upstreams.upstream_for_email(email)
    if realm is not None and realm.enforce_for_domains:
        audit.record_failure("login", details={"reason": "sso_required", "upstream": realm.slug})
        raise SingleSignOnRequired(f"This address signs in with {realm.display_name} (single sign-on), "
                                   "not with a password: use the sign-in page.")


def _login_refusal(user: User | None, password_ok: bool) -> str | None:
    if user is None:
        return "unknown_account"
    if not password_ok:
        return "bad_password"
    if not user.is_active:
        return "inactive_account"
    return None


def update_profile(user: User, changes: dict) -> User:
    """Apply profile changes; any non-profile field is refused with 422 and nothing is written."""
    refused = sorted(set(changes) - set(PROFILE_FIELDS))
    if refused:
        raise ValidationError(details={field: ["This field cannot be changed here."] for field in refused})
    if "name" in changes:
        clean_name(changes["name"])
    _refuse_control_characters(changes)
    _check_lengths(changes)
    for field, value in changes.items():
        setattr(user, field, value.strip() if isinstance(value, str) else value)
    if "phone_number" in changes:
        user.phone_number_verified = False
    db.session.flush()
    if changes:
        audit.record("profile.update", actor_user_id=user.id, target_type="user", target_id=user.id,
                     details={"fields": sorted(changes)})
    return user


def verify_current_password(user: User, password: str, *, action: str) -> None:
    """422 on `current_password` unless `password` is the user's; the refusal is audited."""
    if not verify_password(password, user.password_hash):
        audit.record_failure(action, actor_user_id=user.id, target_type="user", target_id=user.id,
                             details={"reason": "wrong_current_password"})
        raise ValidationError("The current password is incorrect.",
                              details={"current_password": ["The current password is incorrect."]})


def change_password(user: User, current_password: str, new_password: str, *,
                    keep_session_id: str | None = None) -> int:
    """Set a new password after checking the current one; end every other session of the user.

    Policy problems are reported on `new_password`. Returns how many sessions were ended.
    """
    verify_current_password(user, current_password, action="password.change")
    _check_password_policy(new_password, "new_password", email=user.email, name=user.name)
    if verify_password(new_password, user.password_hash):
        raise ValidationError(details={"new_password": ["The new password must differ from the current one."]})
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    ended = session_end.end_all_sessions(user, reason="password_change", except_session_id=keep_session_id)
    db.session.flush()
    audit.record("password.change", actor_user_id=user.id, target_type="user", target_id=user.id,
                 details={"sessions_ended": ended})
    return ended


@dataclass(frozen=True)
class MembershipView:
    """One organization the user belongs to, with the user's role in it."""

    id: str
    name: str
    slug: str
    role: str


def organizations_of(user: User) -> list[MembershipView]:
    """The organizations `user` belongs to, by name, with the user's role."""
    query = (select(Organization, Membership.role)
             .join(Membership, Membership.organization_id == Organization.id)
             .where(Membership.user_id == user.id)
             .order_by(Organization.name, Organization.id))
    return [MembershipView(org.id, org.name, org.slug, role) for org, role in db.session.execute(query)]


def _count(query) -> int:
    return db.session.scalar(select(func.count()).select_from(query.subquery())) or 0


def _owned_organizations(user: User) -> list[Organization]:
    query = (select(Organization).join(Membership, Membership.organization_id == Organization.id)
             .where(Membership.user_id == user.id, Membership.role == Role.OWNER.value))
    return list(db.session.scalars(query))


def _others_in(org: Organization, user: User, role: Role | None = None):
    query = select(Membership.id).where(Membership.organization_id == org.id, Membership.user_id != user.id)
    return query.where(Membership.role == role.value) if role else query


def _blocking_organizations(user: User) -> tuple[list[Organization], list[Organization]]:
    """(organizations the user is the last owner of while others remain, organizations only they are in)."""
    blocking, solo = [], []
    for org in _owned_organizations(user):
        if _count(_others_in(org, user)) == 0:
            solo.append(org)
        elif _count(_others_in(org, user, Role.OWNER)) == 0:
            blocking.append(org)
    return blocking, solo


def delete_account(user: User, password: str) -> None:
    """Delete the user after checking their password (remove_account), and audit `account.delete`."""
    verify_current_password(user, password, action="account.delete")
    user_id = user.id
    solo = remove_account(user)
    audit.record("account.delete", actor_user_id=user_id, target_type="user", target_id=user_id,
                 details={"organizations_deleted": solo})


def remove_account(user: User) -> list[str]:
    """Delete `user`; the ids of the organizations deleted with it. The user's own deletion and a
    platform admin's both go through here (each caller audits it).

    Refused with 409 while the user is the last owner of an organization that has other members
    (ownership must be handed over first). Organizations where the user is the only member are
    deleted with the account; their OAuth clients are kept, detached from the organization.
    Sessions end first, as a logout (idp.services.session_end), then sessions and memberships are
    deleted explicitly so no database needs ON DELETE CASCADE on.
    """
    blocking, solo = _blocking_organizations(user)
    if blocking:
        names = ", ".join(org.name for org in blocking)
        raise Conflict(f"The account is the last owner of {names}; make another member an owner first.",
                       details={"organizations": [{"id": o.id, "name": o.name, "slug": o.slug} for o in blocking]})
    user_id = user.id
    # Ended (relying parties told) before the rows that name their relying parties go with the user.
    session_end.end_all_sessions(user, reason="account_deleted")
    _delete_solo_organizations(solo)
    db.session.execute(delete(Session).where(Session.user_id == user_id))
    db.session.execute(delete(Membership).where(Membership.user_id == user_id))
    db.session.delete(user)
    db.session.flush()
    return [org.id for org in solo]


def _delete_solo_organizations(orgs: list[Organization]) -> None:
    ids = [org.id for org in orgs]
    if not ids:
        return
    db.session.execute(update(OAuthClient).where(OAuthClient.organization_id.in_(ids)).values(organization_id=None))
    db.session.execute(delete(Membership).where(Membership.organization_id.in_(ids)))
    db.session.execute(delete(Organization).where(Organization.id.in_(ids)))
