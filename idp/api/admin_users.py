"""/api/v1/admin/users: every user account, for platform admins (an API session of an is_admin user, or a
token with `manage:users` of a platform admin or of a platform-wide service account)."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from idp.api.conventions import (ETAG_HEADER, IF_MATCH_PARAMETER, PRECONDITION_FAILED_RESPONSE, PageArgsSchema,
                                 PageMetaSchema, check_if_match, etag_for, page_meta, paginate, with_etag)
from idp.api.envelope import ErrorEnvelopeSchema, envelope_of, ok
from idp.api.schemas.admin_users import (AdminSessionSchema, AdminUserCreateSchema, AdminUserListQuerySchema,
                                         AdminUserSchema, AdminUserUpdateSchema, SessionsRevokedSchema,
                                         SignInMethodsSchema, UserDeletedSchema)
from idp.api.security import BEARER_SECURITY, current_principal, platform_admin_management
from idp.models import Session, User
from idp.services import user_admin
from idp.services.management_scopes import MANAGE_USERS
from idp.services.user_admin import Actor, UserFilters

blp = Blueprint("admin_users", __name__, url_prefix="/api/v1/admin/users",
                description="Every user account (platform admins): search, invite, change, disable, delete, "
                            "sessions and sign-in methods")

FORBIDDEN = {"schema": ErrorEnvelopeSchema,
             "description": "Not a platform admin, or the token lacks the manage:users scope"}
NOT_FOUND = {"schema": ErrorEnvelopeSchema, "description": "No such user"}
INVALID_QUERY = {"schema": ErrorEnvelopeSchema,
                 "description": "VALIDATION_ERROR: a query parameter is malformed or unknown, or the cursor is not "
                                "valid; details name each"}


def _actor() -> Actor:
    principal = current_principal()
    return Actor(principal.actor_user_id, principal.actor_client_id)


def user_data(user: User) -> dict:
    return {"id": user.id, "email": user.email, "name": user.name, "email_verified": user.email_verified,
            "disabled": not user.is_active, "is_admin": user.is_admin, "has_password": user.password_hash is not None,
            "last_login_at": user.last_login_at, "password_changed_at": user.password_changed_at,
            "created_at": user.created_at, "updated_at": user.updated_at}


def etag_of(user: User) -> str:
    return etag_for(user.id, user.updated_at)


def _filters(query: dict) -> UserFilters:
    return UserFilters(**{name: query.get(name) for name in
                          ("q", "status", "organization_id", "upstream", "created_since")})


@blp.route("")
class UserCollection(MethodView):
    @platform_admin_management(MANAGE_USERS)
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(AdminUserListQuerySchema, location="query")
    @blp.response(200, envelope_of(AdminUserSchema, many=True, meta=PageMetaSchema),
                  description="Newest first; meta.pagination.next_cursor is null on the last page")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(422, **INVALID_QUERY)
    def get(self, query: dict):
        """List users: search by e-mail or name, filter by status, organization, upstream and creation time."""
        users, next_cursor = paginate(user_admin.users_query(_filters(query)), columns=(User.created_at, User.id),
                                      limit=query["limit"], cursor=query.get("cursor"))
        return ok([user_data(user) for user in users], "Users", meta=page_meta(next_cursor, query["limit"]))

    @platform_admin_management(MANAGE_USERS)
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(AdminUserCreateSchema)
    @blp.response(201, envelope_of(AdminUserSchema), headers=ETAG_HEADER,
                  description="Created without a password; the address gets a single-use link to choose one")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="The address is already used by an account")
    def post(self, data: dict):
        """Create a user and mail them an invitation to choose their password (no password in the request)."""
        user = user_admin.create_user(_actor(), data["email"], data["name"])
        return with_etag((ok(user_data(user), "User created; invitation mailed", code=201), 201), etag_of(user))


@blp.route("/<user_id>")
class UserItem(MethodView):
    @platform_admin_management(MANAGE_USERS)
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, envelope_of(AdminUserSchema), headers=ETAG_HEADER)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    def get(self, user_id: str):
        """Get a user, with the ETag a PATCH or DELETE may send back in If-Match."""
        user = user_admin.get_user(user_id)
        return with_etag(ok(user_data(user), "User"), etag_of(user))

    @platform_admin_management(MANAGE_USERS)
    @blp.doc(security=BEARER_SECURITY, parameters=[IF_MATCH_PARAMETER])
    @blp.arguments(AdminUserUpdateSchema)
    @blp.response(200, envelope_of(AdminUserSchema), headers=ETAG_HEADER)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema,
                      description="Disabling or demoting yourself, or the last active platform admin")
    @blp.alt_response(412, **PRECONDITION_FAILED_RESPONSE)
    def patch(self, data: dict, user_id: str):
        """Change name, disabled, email_verified or is_admin; disabling ends every session and token at once."""
        user = user_admin.get_user_for_change(user_id, may_remove_an_admin=user_admin.removes_admin_rights(data))
        check_if_match(etag_of(user))
        user_admin.update_user(_actor(), user, data)
        return with_etag(ok(user_data(user), "User updated"), etag_of(user))

    @platform_admin_management(MANAGE_USERS)
    @blp.doc(security=BEARER_SECURITY, parameters=[IF_MATCH_PARAMETER])
    @blp.response(200, envelope_of(UserDeletedSchema),
                  description="Deleted: sessions ended (relying parties told), organizations only they were in gone")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema,
                      description="Yourself, the last active platform admin, or the last owner of an organization "
                                  "with other members (error.details.organizations lists them)")
    @blp.alt_response(412, **PRECONDITION_FAILED_RESPONSE)
    def delete(self, user_id: str):
        """Delete a user, as their own account deletion does."""
        user = user_admin.get_user_for_change(user_id, may_remove_an_admin=True)
        check_if_match(etag_of(user))
        deleted = user_admin.delete_user(_actor(), user)
        return ok({"organizations_deleted": deleted}, "User deleted")


@blp.route("/<user_id>/sessions/revoke", methods=["POST"])
@platform_admin_management(MANAGE_USERS)
@blp.doc(security=BEARER_SECURITY)
@blp.response(200, envelope_of(SessionsRevokedSchema))
@blp.alt_response(403, **FORBIDDEN)
@blp.alt_response(404, **NOT_FOUND)
def revoke_sessions(user_id: str):
    """End every browser and API session of the user (back-channel logout) and revoke all their tokens."""
    ended, revoked = user_admin.end_sessions_of(_actor(), user_admin.get_user(user_id))
    return ok({"sessions_ended": ended, "tokens_revoked": revoked}, "Sessions ended")


@blp.route("/<user_id>/password-reset", methods=["POST"])
@platform_admin_management(MANAGE_USERS)
@blp.doc(security=BEARER_SECURITY)
@blp.response(202, envelope_of(None), description="The reset mail is on its way (sent once this answer has gone)")
@blp.alt_response(403, **FORBIDDEN)
@blp.alt_response(404, **NOT_FOUND)
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="The account is disabled")
@blp.alt_response(429, schema=ErrorEnvelopeSchema,
                  description="The address got too many mails recently (RATELIMIT_MAIL_RECIPIENT); nothing sent")
def send_password_reset(user_id: str):
    """Mail the user a single-use password reset link (the same mail as /forgot-password)."""
    user_admin.send_password_reset(_actor(), user_admin.get_user(user_id))
    return ok({}, "Password reset mail sent", code=202), 202


@blp.route("/<user_id>/sessions", methods=["GET"])
@platform_admin_management(MANAGE_USERS)
@blp.doc(security=BEARER_SECURITY)
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, envelope_of(AdminSessionSchema, many=True, meta=PageMetaSchema),
              description="Live sessions, newest first")
@blp.alt_response(403, **FORBIDDEN)
@blp.alt_response(404, **NOT_FOUND)
@blp.alt_response(422, **INVALID_QUERY)
def list_sessions(query: dict, user_id: str):
    """The user's active sessions: kind, times, address, user agent and the relying parties under each."""
    user = user_admin.get_user(user_id)
    found, next_cursor = paginate(user_admin.active_sessions_query(user), columns=(Session.created_at, Session.id),
                                  limit=query["limit"], cursor=query.get("cursor"))
    clients = user_admin.clients_by_session([session.id for session in found])
    return ok([_session_data(session, clients[session.id]) for session in found], "Sessions",
              meta=page_meta(next_cursor, query["limit"]))


def _session_data(session: Session, clients: list) -> dict:
    return {"id": session.id, "kind": session.kind, "created_at": session.created_at,
            "last_seen_at": session.last_seen_at, "expires_at": session.expires_at,
            "ip_address": session.ip_address, "user_agent": session.user_agent, "idp": session.idp,
            "amr": session.amr, "clients": [{"client_id": c.client_id, "name": c.name} for c in clients]}


@blp.route("/<user_id>/identities", methods=["GET"])
@platform_admin_management(MANAGE_USERS)
@blp.doc(security=BEARER_SECURITY)
@blp.response(200, envelope_of(SignInMethodsSchema))
@blp.alt_response(403, **FORBIDDEN)
@blp.alt_response(404, **NOT_FOUND)
def sign_in_methods(user_id: str):
    """How the user signs in: whether a password is set, and each linked upstream identity."""
    return ok(user_admin.sign_in_methods(user_admin.get_user(user_id)), "Sign-in methods")
