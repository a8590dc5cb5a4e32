"""/api/v1/clients: OAuth clients (relying parties and service accounts), for platform admins and the
owners and admins of an organization (its own clients); tokens need the manage:clients scope.

A client another caller may not manage is answered as if it did not exist (404). Conditional writes
follow RFC 9110 13.1.1 (If-Match, 412).
"""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from idp.api.conventions import (ETAG_HEADER, IF_MATCH_PARAMETER, PRECONDITION_FAILED_RESPONSE, PageMetaSchema,
                                 check_if_match, etag_for, page_meta, paginate, with_etag)
from idp.api.envelope import ErrorEnvelopeSchema, envelope_of, ok
from idp.api.principal import Principal
from idp.api.schemas.clients import (ClientCreatedSchema, ClientCreateSchema, ClientListQuerySchema, ClientSchema,
                                     ClientUpdateSchema, SecretRotationSchema, SecretSchema)
from idp.api.security import BEARER_SECURITY, current_principal, management_required, require_organization_manager
from idp.errors import NotFound
from idp.models import OAuthClient
from idp.services import client_admin
from idp.services.client_metadata import provider_metadata
from idp.services.management_scopes import MANAGE_CLIENTS

blp = Blueprint("clients", __name__, url_prefix="/api/v1/clients",
                description="OAuth 2.0 / OpenID Connect clients, with RFC 7591 metadata")

NOT_FOUND = {"schema": ErrorEnvelopeSchema,
             "description": "No such client or organization, or the caller may not manage it"}
FORBIDDEN = {"schema": ErrorEnvelopeSchema,
             "description": "The token lacks manage:clients, the caller's role does not allow this, or a field only "
                            "a platform admin sets (first_party, management scopes in scope); details name it"}
INVALID = {"schema": ErrorEnvelopeSchema,
           "description": "VALIDATION_ERROR: an unknown field, or metadata /oauth2/register would refuse too "
                          "(redirect URIs, grant and response types, auth method, jwks and jwks_uri, URLs); "
                          "details name the field"}


def client_data(client: OAuthClient) -> dict:
    """A client as the API shows it: metadata and policy, never a secret or its hash."""
    return {**{name: getattr(client, name) for name in (
        "id", "client_id", "organization_id", "redirect_uris", "post_logout_redirect_uris", "grant_types",
        "response_types", "scope", "token_endpoint_auth_method", "jwks", "jwks_uri", "logo_uri", "client_uri",
        "policy_uri", "tos_uri", "id_token_signed_response_alg", "backchannel_logout_uri",
        "backchannel_logout_session_required", "frontchannel_logout_uri", "frontchannel_logout_session_required",
        "require_pkce", "first_party", "access_token_lifetime", "refresh_token_lifetime", "is_active",
        "previous_secret_expires_at", "created_at", "updated_at")},
            "client_name": client.name, "has_secret": client.client_secret_hash is not None}


def client_etag(client: OAuthClient) -> str:
    return etag_for(client.id, client.version)


def actor_of(principal: Principal) -> client_admin.ClientActor:
    return client_admin.ClientActor(principal.actor_user_id, principal.actor_client_id, principal.is_platform_admin)


def managed_client(principal: Principal, client_id: str, *, for_update: bool = False) -> OAuthClient:
    """The client, when the principal manages it; NotFound when it does not exist or belongs to nobody the
    principal answers for (a platform client, another organization's); Forbidden for a member."""
    client = client_admin.find_client(client_id, for_update=for_update)
    if client is None or (client.organization_id is None and not principal.is_platform_admin):
        raise NotFound("Client not found.")
    if client.organization_id is not None:
        try:
            require_organization_manager(principal, client.organization_id)
        except NotFound:
            raise NotFound("Client not found.") from None
    return client


def visible_organizations(principal: Principal) -> list[str] | None:
    """The organizations whose clients a list shows (None: all)."""
    if principal.is_platform_admin:
        return None
    if principal.is_service_account:
        return [principal.organization_id]
    return client_admin.managed_organization_ids(principal.user.id)


@blp.route("")
class ClientCollection(MethodView):
    @management_required(MANAGE_CLIENTS)
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(ClientListQuerySchema, location="query")
    @blp.response(200, envelope_of(ClientSchema, many=True, meta=PageMetaSchema),
                  description="The clients the caller manages, newest first")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(422, schema=ErrorEnvelopeSchema,
                      description="VALIDATION_ERROR: an unknown or malformed parameter, or a cursor of another list")
    def get(self, query: dict):
        """List the clients the caller may manage (platform admins: all), by organization and name."""
        select = client_admin.clients_query(visible_organizations(current_principal()), query.get("organization_id"),
                                            query.get("q"))
        rows, next_cursor = paginate(select, columns=(OAuthClient.created_at, OAuthClient.id), limit=query["limit"],
                                     cursor=query.get("cursor"))
        return ok([client_data(client) for client in rows], "Clients", meta=page_meta(next_cursor, query["limit"]))

    @management_required(MANAGE_CLIENTS)
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(ClientCreateSchema)
    @blp.response(201, envelope_of(ClientCreatedSchema), headers=ETAG_HEADER,
                  description="Created; client_secret is shown this once")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(422, **INVALID)
    def post(self, data: dict):
        """Register a client (platform admins; owners and admins in their organization)."""
        principal = current_principal()
        if data.get("organization_id") is not None:
            require_organization_manager(principal, data["organization_id"])
        client, secret = client_admin.create_client(actor_of(principal), data, provider_metadata())
        body = {**client_data(client), "client_secret": secret}
        return with_etag((ok(body, "Client created", code=201), 201), client_etag(client))


@blp.route("/<client_id>")
class ClientItem(MethodView):
    @management_required(MANAGE_CLIENTS)
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, envelope_of(ClientSchema), headers=ETAG_HEADER)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    def get(self, client_id: str):
        """Get a client the caller manages, with its ETag."""
        client = managed_client(current_principal(), client_id)
        return with_etag(ok(client_data(client), "Client"), client_etag(client))

    @management_required(MANAGE_CLIENTS)
    @blp.doc(security=BEARER_SECURITY, parameters=[IF_MATCH_PARAMETER])
    @blp.arguments(ClientUpdateSchema)
    @blp.response(200, envelope_of(ClientSchema), headers=ETAG_HEADER,
                  description="Updated; every worker sees the change within a second")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(412, **PRECONDITION_FAILED_RESPONSE)
    @blp.alt_response(422, **INVALID)
    def patch(self, data: dict, client_id: str):
        """Change the fields given (RFC 7592 2.2's rules on the merged metadata); is_active false deactivates."""
        principal = current_principal()
        client = managed_client(principal, client_id, for_update=True)
        check_if_match(client_etag(client))
        client_admin.update_client(actor_of(principal), client, data, provider_metadata())
        return with_etag(ok(client_data(client), "Client updated"), client_etag(client))

    @management_required(MANAGE_CLIENTS)
    @blp.doc(security=BEARER_SECURITY, parameters=[IF_MATCH_PARAMETER])
    @blp.response(200, envelope_of(None), description="Deleted, with its tokens, grants and consents")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(412, **PRECONDITION_FAILED_RESPONSE)
    def delete(self, client_id: str):
        """Delete a client: nothing it was issued works any more."""
        principal = current_principal()
        client = managed_client(principal, client_id, for_update=True)
        check_if_match(client_etag(client))
        client_admin.delete_client(actor_of(principal), client)
        return ok({}, "Client deleted")


@blp.route("/<client_id>/secret", methods=["POST"])
@management_required(MANAGE_CLIENTS)
@blp.doc(security=BEARER_SECURITY)
@blp.arguments(SecretRotationSchema)
@blp.response(200, envelope_of(SecretSchema), description="A new secret, shown this once")
@blp.alt_response(403, **FORBIDDEN)
@blp.alt_response(404, **NOT_FOUND)
@blp.alt_response(422, **INVALID)
def rotate_secret(data: dict, client_id: str):
    """Rotate the client's secret; the old one stays valid for grace_period seconds."""
    principal = current_principal()
    client = managed_client(principal, client_id, for_update=True)
    secret = client_admin.rotate_secret(actor_of(principal), client, data["grace_period"])
    return ok({"client_id": client.client_id, "client_secret": secret,
               "previous_secret_expires_at": client.previous_secret_expires_at}, "Secret rotated")
