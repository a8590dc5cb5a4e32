"""/api/v1/keys: the signing keys (platform admins; service accounts with manage:keys made by one).

The same operations and refusals as `flask keys` (idp.services.signing_key_admin). A change is
written to KEYS_DIR, and every worker and node re-reads the keys when its metadata changes, so
/oauth2/jwks and discovery serve the new set on their next request.
"""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from idp.api.conventions import PageArgsSchema, PageMetaSchema, page_meta
from idp.api.envelope import ErrorEnvelopeSchema, envelope_of, ok
from idp.api.schemas.keys import KeyAlgSchema, KeySchema, RotationSchema
from idp.api.security import BEARER_SECURITY, current_principal, platform_admin_management
from idp.services import signing_key_admin

SCOPE = "manage:keys"

blp = Blueprint("keys", __name__, url_prefix="/api/v1/keys",
                description="Signing keys of ID tokens and access tokens (JWKS at /oauth2/jwks)")

FORBIDDEN = {"schema": ErrorEnvelopeSchema,
             "description": "Not a platform admin (or a platform-wide service account), or the token lacks "
                            "manage:keys"}
NOT_FOUND = {"schema": ErrorEnvelopeSchema, "description": "No key with this kid"}
WRITE_CONFLICT = {"schema": ErrorEnvelopeSchema,
                  "description": "CONFLICT: KEYS_DIR is read-only on this server (use `flask keys` where it is "
                                 "writable)"}
RETIRE_CONFLICT = {"schema": ErrorEnvelopeSchema,
                   "description": "CONFLICT: the only active key of RS256 (it signs every access token) or of an "
                                  "algorithm a client has its ID tokens signed with; rotate first. Or KEYS_DIR is "
                                  "read-only on this server"}
BAD_PAGE = {"schema": ErrorEnvelopeSchema,
            "description": "VALIDATION_ERROR: limit out of range, a cursor that is not a kid of this list, or an "
                           "unknown query parameter"}


def _actor() -> dict:
    principal = current_principal()
    return {"actor_user_id": principal.actor_user_id, "actor_client_id": principal.actor_client_id}


@blp.route("")
class KeyCollection(MethodView):
    @platform_admin_management(SCOPE)
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, envelope_of(KeySchema, many=True, meta=PageMetaSchema),
                  description="Every key, newest first: kid, alg, state, dates, whether the JWKS publishes it")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(422, **BAD_PAGE)
    def get(self, query: dict):
        """List the signing keys, as `flask keys list`."""
        keys, next_cursor = signing_key_admin.list_keys(query["limit"], query.get("cursor"))
        return ok(keys, "Signing keys", meta=page_meta(next_cursor, query["limit"]))

    @platform_admin_management(SCOPE)
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(KeyAlgSchema)
    @blp.response(201, envelope_of(KeySchema),
                  description="A new key in state next: published in the JWKS at once, signing only after a rotation")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(409, **WRITE_CONFLICT)
    def post(self, data: dict):
        """Generate a key (state next), as `flask keys generate`."""
        key = signing_key_admin.generate_key(data["alg"], **_actor())
        return ok(key, "Signing key generated", code=201)


@blp.route("/rotate", methods=["POST"])
@platform_admin_management(SCOPE)
@blp.doc(security=BEARER_SECURITY)
@blp.arguments(KeyAlgSchema)
@blp.response(200, envelope_of(RotationSchema),
              description="The waiting next key activated and the active one retired (still published until its "
                          "tokens expire), or, with no key waiting, a next key published")
@blp.alt_response(403, **FORBIDDEN)
@blp.alt_response(409, **WRITE_CONFLICT)
def rotate_keys(data: dict):
    """Rotate the signing key of an algorithm, as `flask keys rotate`."""
    outcome, key, retired = signing_key_admin.rotate_keys(data["alg"], **_actor())
    message = "Signing key activated" if outcome == "activated" else "No key was waiting: a next key was published"
    return ok({"outcome": outcome, "key": key, "retired": retired}, message)


@blp.route("/<kid>", methods=["GET"])
@platform_admin_management(SCOPE)
@blp.doc(security=BEARER_SECURITY)
@blp.response(200, envelope_of(KeySchema))
@blp.alt_response(403, **FORBIDDEN)
@blp.alt_response(404, **NOT_FOUND)
def get_key(kid: str):
    """Get one signing key by kid."""
    return ok(signing_key_admin.get_key(kid), "Signing key")


@blp.route("/<kid>/retire", methods=["POST"])
@platform_admin_management(SCOPE)
@blp.doc(security=BEARER_SECURITY)
@blp.response(200, envelope_of(KeySchema),
              description="Retired (or already retired): it signs nothing and stays published until its tokens "
                          "expire")
@blp.alt_response(403, **FORBIDDEN)
@blp.alt_response(404, **NOT_FOUND)
@blp.alt_response(409, **RETIRE_CONFLICT)
def retire_key(kid: str):
    """Retire a signing key, as `flask keys retire`."""
    key = signing_key_admin.retire_key(kid, **_actor())
    return ok(key, "Signing key retired")
