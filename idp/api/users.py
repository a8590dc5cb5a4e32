"""/api/v1/users/me: the signed-in user's profile, password, organizations and account deletion."""
from __future__ import annotations

from flask_smorest import Blueprint

from idp.api.envelope import ErrorEnvelopeSchema, envelope_of, ok
from idp.api.schemas.accounts import (CountMetaSchema, MembershipSchema, PasswordChangeResultSchema,
                                      PasswordChangeSchema, PasswordConfirmSchema, ProfileUpdateSchema,
                                      UserDataSchema)
from idp.api.security import BEARER_SECURITY, current_session, current_user, login_required
from idp.extensions import limiter
from idp.security import ratelimits
from idp.services import accounts, audit

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="The signed-in user's own account")

UNAUTHORIZED = {"schema": ErrorEnvelopeSchema, "description": "Missing, invalid, expired or revoked bearer token"}
INVALID_BODY = {"schema": ErrorEnvelopeSchema, "description": "The body is not valid (error.details names the fields)"}
RATE_LIMITED = {"schema": ErrorEnvelopeSchema, "description": "Too many password checks; see Retry-After"}


def _password_check_limit(action: str):
    """Password re-checks (change, delete) share one per-user bucket at the per-account login rate."""

    def on_breach(limit) -> None:
        audit.record_failure(action, actor_user_id=current_user().id,
                             details={"reason": "rate_limited", "limit": str(limit.limit)})

    return limiter.shared_limit(ratelimits.login_account_limit, scope="password-recheck",
                                key_func=ratelimits.current_user_key, exempt_when=ratelimits.limits_disabled,
                                on_breach=on_breach)


@blp.route("/me", methods=["GET"])
@blp.doc(security=BEARER_SECURITY)
@login_required
@blp.response(200, envelope_of(UserDataSchema))
@blp.alt_response(401, **UNAUTHORIZED)
def get_me():
    """The signed-in user's profile."""
    return ok({"user": current_user()})


@blp.route("/me", methods=["PATCH"])
@blp.doc(security=BEARER_SECURITY)
@login_required
@blp.arguments(ProfileUpdateSchema)
@blp.response(200, envelope_of(UserDataSchema))
@blp.alt_response(401, **UNAUTHORIZED)
@blp.alt_response(415, schema=ErrorEnvelopeSchema, description="The body is not JSON")
@blp.alt_response(422, schema=ErrorEnvelopeSchema,
                  description="A field is invalid, or is not a profile field (e.g. email, is_admin); "
                              "nothing is written")
def update_me(changes: dict):
    """Change profile fields: name, given_name, family_name, picture, locale, zoneinfo, phone_number, address."""
    user = accounts.update_profile(current_user(), changes)
    return ok({"user": user}, "Profile updated")


@blp.route("/me", methods=["DELETE"])
@blp.doc(security=BEARER_SECURITY)
@login_required
@_password_check_limit("account.delete")
@blp.arguments(PasswordConfirmSchema)
@blp.response(200, envelope_of(None))
@blp.alt_response(401, **UNAUTHORIZED)
@blp.alt_response(409, schema=ErrorEnvelopeSchema,
                  description="The user is the last owner of an organization with other members "
                              "(error.details.organizations lists them)")
@blp.alt_response(422, schema=ErrorEnvelopeSchema, description="Password missing or incorrect")
@blp.alt_response(429, **RATE_LIMITED)
def delete_me(body: dict):
    """Delete the account after confirming the password; its sessions end with it."""
    accounts.delete_account(current_user(), body["password"])
    return ok(None, "Account deleted")


@blp.route("/me/password", methods=["POST"])
@blp.doc(security=BEARER_SECURITY)
@login_required
@_password_check_limit("password.change")
@blp.arguments(PasswordChangeSchema)
@blp.response(200, envelope_of(PasswordChangeResultSchema))
@blp.alt_response(401, **UNAUTHORIZED)
@blp.alt_response(415, schema=ErrorEnvelopeSchema, description="The body is not JSON")
@blp.alt_response(422, schema=ErrorEnvelopeSchema,
                  description="Current password wrong (details.current_password) or new one refused by "
                              "the policy (details.new_password)")
@blp.alt_response(429, **RATE_LIMITED)
def change_my_password(body: dict):
    """Change the password; every other session of the user ends, this one stays."""
    ended = accounts.change_password(current_user(), body["current_password"], body["new_password"],
                                     keep_session_id=current_session().id)
    return ok({"sessions_ended": ended}, "Password changed")


@blp.route("/me/organizations", methods=["GET"])
@blp.doc(security=BEARER_SECURITY)
@login_required
@blp.response(200, envelope_of(MembershipSchema, many=True, meta=CountMetaSchema))
@blp.alt_response(401, **UNAUTHORIZED)
def my_organizations():
    """The organizations the user belongs to, with the user's role in each."""
    memberships = accounts.organizations_of(current_user())
    return ok(memberships, meta={"count": len(memberships)})
