"""Request and response schemas for accounts, login, sessions and the user's own profile."""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from zoneinfo import available_timezones

import marshmallow as ma
from flask import g
from marshmallow import validate

from idp.errors import ValidationError as AppValidationError
from idp.security.passwords import MAX_LENGTH as MAX_PASSWORD_LENGTH
from idp.security.passwords import MIN_LENGTH as MIN_PASSWORD_LENGTH
from idp.security.passwords import password_problems
from idp.services import accounts

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
BCP47_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"
# Documented only: the password policy checks lengths itself, with its own messages.
NEW_PASSWORD_LENGTH = {"minLength": MIN_PASSWORD_LENGTH, "maxLength": MAX_PASSWORD_LENGTH}


# What PlainText accepts, documented as a JSON Schema pattern (control characters, category Cc, refused).
SINGLE_LINE_PATTERN = "^[^\\x00-\\x1F\\x7F-\\x9F]*$"
MULTILINE_PATTERN = "^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F]*$"


class PlainText(ma.fields.String):
    """A string without control characters (newlines only where `multiline`)."""

    def __init__(self, *args, multiline: bool = False, **kwargs):
        if not any(isinstance(v, validate.Regexp) for v in _as_list(kwargs.get("validate"))):
            pattern = MULTILINE_PATTERN if multiline else SINGLE_LINE_PATTERN
            kwargs["metadata"] = {"pattern": pattern, **kwargs.get("metadata", {})}
        super().__init__(*args, **kwargs)
        self.multiline = multiline

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        allowed = {"\n", "\r", "\t"} if self.multiline else set()
        if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text):
            raise ma.ValidationError("Control characters are not allowed.")
        return text


def _as_list(validators) -> list:
    if validators is None:
        return []
    return list(validators) if isinstance(validators, (list, tuple)) else [validators]


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _valid_zoneinfo(value: str) -> None:
    if value not in _timezones():
        raise ma.ValidationError("Must be an IANA time zone name, e.g. Europe/Paris.")


def _password(**kwargs) -> ma.fields.String:
    return ma.fields.String(required=True, metadata={"format": "password", **kwargs.pop("metadata", {})}, **kwargs)


# Requests -------------------------------------------------------------------------------------

def _valid_new_email(value: str) -> None:
    """The account service's own verdict (email-validator), here so it comes with every other field's."""
    try:
        accounts.normalise_email(value)
    except AppValidationError as exc:
        raise ma.ValidationError(exc.details.get("email") or [exc.message]) from None


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Must not be blank.")


class RegisterSchema(ma.Schema):
    """Every field is checked as the account service will, so one answer names every invalid field."""

    email = PlainText(required=True, validate=[validate.Length(min=3, max=254), _valid_new_email],
                      metadata={"description": "Lower-cased and validated; at most 254 characters", "format": "email"})
    password = _password(metadata={"description": "8 to 256 characters; not a common password, "
                                                  "not the email or name. Policy errors: error.details.password",
                                   **NEW_PASSWORD_LENGTH})
    name = PlainText(required=True, validate=[validate.Length(min=1, max=200), _not_blank])

    @ma.validates_schema(skip_on_field_errors=False)
    def check_password_policy(self, data: dict, **kwargs) -> None:
        """The password policy, even when other fields failed (it is told only the valid ones)."""
        if not isinstance(data.get("password"), str):
            return
        problems = password_problems(data["password"], email=accounts.canonical_email(data.get("email", "")),
                                     name=data.get("name", "").strip())
        if problems:
            raise ma.ValidationError(problems, field_name="password")


class LoginSchema(ma.Schema):
    email = PlainText(required=True, validate=validate.Length(min=1, max=254))
    password = _password(validate=validate.Length(min=1, max=MAX_PASSWORD_LENGTH))


class AddressSchema(ma.Schema):
    """The OIDC `address` claim (OpenID Connect Core 1.0 section 5.1.1)."""

    formatted = PlainText(multiline=True, allow_none=True, validate=validate.Length(max=500))
    street_address = PlainText(multiline=True, allow_none=True, validate=validate.Length(max=200))
    locality = PlainText(allow_none=True, validate=validate.Length(max=100))
    region = PlainText(allow_none=True, validate=validate.Length(max=100))
    postal_code = PlainText(allow_none=True, validate=validate.Length(max=20))
    country = PlainText(allow_none=True, validate=validate.Length(max=100))


class ProfileUpdateSchema(ma.Schema):
    """Profile fields only; any other field (email, is_admin, roles, subject, ...) is a 422."""

    name = PlainText(validate=validate.Length(min=1, max=200))
    given_name = PlainText(allow_none=True, validate=validate.Length(max=100))
    family_name = PlainText(allow_none=True, validate=validate.Length(max=100))
    picture = PlainText(allow_none=True, validate=[validate.Length(max=500),
                                                   validate.URL(schemes={"https", "http"})])
    locale = PlainText(allow_none=True, validate=[validate.Length(max=35), validate.Regexp(BCP47_PATTERN)],
                       metadata={"description": "BCP 47 language tag, e.g. en-GB"})
    zoneinfo = PlainText(allow_none=True, validate=[validate.Length(max=64), _valid_zoneinfo],
                         metadata={"description": "IANA time zone, e.g. Europe/Paris"})
    phone_number = PlainText(allow_none=True, validate=validate.Regexp(E164_PATTERN),
                             metadata={"description": "E.164, e.g. +14155550123; resets phone_number_verified"})
    address = ma.fields.Nested(AddressSchema, allow_none=True)


class PasswordChangeSchema(ma.Schema):
    current_password = _password(validate=validate.Length(min=1, max=MAX_PASSWORD_LENGTH))
    new_password = _password(metadata={"description": "Must pass the password policy; errors in "
                                                      "error.details.new_password", **NEW_PASSWORD_LENGTH})


class PasswordConfirmSchema(ma.Schema):
    password = _password(validate=validate.Length(min=1, max=MAX_PASSWORD_LENGTH),
                         metadata={"description": "The account's current password, to confirm"})


# Responses ------------------------------------------------------------------------------------

class UserSchema(ma.Schema):
    id = ma.fields.String()
    subject = ma.fields.String(metadata={"description": "The stable OIDC `sub` of this user"})
    email = ma.fields.String()
    email_verified = ma.fields.Boolean()
    name = ma.fields.String()
    given_name = ma.fields.String(allow_none=True)
    family_name = ma.fields.String(allow_none=True)
    picture = ma.fields.String(allow_none=True)
    locale = ma.fields.String(allow_none=True)
    zoneinfo = ma.fields.String(allow_none=True)
    phone_number = ma.fields.String(allow_none=True)
    phone_number_verified = ma.fields.Boolean()
    address = ma.fields.Nested(AddressSchema, allow_none=True)
    is_admin = ma.fields.Boolean()
    is_active = ma.fields.Boolean()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    last_login_at = ma.fields.DateTime(allow_none=True)
    password_changed_at = ma.fields.DateTime(allow_none=True)


class IsCurrentSession(ma.fields.Boolean):
    """True when the dumped session is the one making this request (g.session)."""

    def __init__(self, **kwargs):
        super().__init__(dump_only=True, dump_default=False, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        current = g.get("session")
        return current is not None and current.id == obj.id


class SessionSchema(ma.Schema):
    id = ma.fields.String()
    kind = ma.fields.String(metadata={"description": "api (bearer token) or browser (SSO cookie)"})
    status = ma.fields.String(metadata={"description": "ACTIVE, REVOKED or EXPIRED"})
    current = IsCurrentSession(metadata={"description": "True for the session making this request"})
    created_at = ma.fields.DateTime()
    last_seen_at = ma.fields.DateTime()
    expires_at = ma.fields.DateTime(metadata={"description": "End of the idle window"})
    absolute_expires_at = ma.fields.DateTime(
        metadata={"description": "Hard cap: created_at + SESSION_ABSOLUTE_TIMEOUT"})
    ip_address = ma.fields.String(allow_none=True)
    user_agent = ma.fields.String(allow_none=True)
    amr = ma.fields.List(ma.fields.String(), allow_none=True)


class UserDataSchema(ma.Schema):
    user = ma.fields.Nested(UserSchema)


class SessionDataSchema(ma.Schema):
    session = ma.fields.Nested(SessionSchema)


class MeSchema(ma.Schema):
    user = ma.fields.Nested(UserSchema)
    session = ma.fields.Nested(SessionSchema)


class LoginResultSchema(ma.Schema):
    token = ma.fields.String(metadata={"description": "Bearer token; send as Authorization: Bearer <token>"})
    token_type = ma.fields.String(metadata={"description": "Always Bearer"})
    expires_at = ma.fields.DateTime(metadata={"description": "When the session's idle window ends"})
    session = ma.fields.Nested(SessionSchema)
    user = ma.fields.Nested(UserSchema)


class PasswordChangeResultSchema(ma.Schema):
    sessions_ended = ma.fields.Integer(metadata={"description": "How many other sessions were revoked"})


class CountMetaSchema(ma.Schema):
    count = ma.fields.Integer(metadata={"description": "How many items `data` holds"})


class MembershipSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "Organization id"})
    name = ma.fields.String()
    slug = ma.fields.String()
    role = ma.fields.String(metadata={"description": "owner, admin or member"})
