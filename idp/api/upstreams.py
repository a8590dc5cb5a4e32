"""/api/v1/upstreams: upstream identity providers (federation), for platform admins and the owners and
admins of an organization (its own upstreams); tokens need the manage:upstreams scope, and a service
account manages its own organization's (a platform-wide one: every upstream).

An upstream another caller may not manage is answered as if it did not exist (404). Conditional writes
follow RFC 9110 13.1.1 (If-Match, 412). Secrets are write-only.
"""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from idp.api.conventions import (ETAG_HEADER, IF_MATCH_PARAMETER, PRECONDITION_FAILED_RESPONSE, PageMetaSchema,
                                 check_if_match, etag_for, page_meta, paginate, with_etag)
from idp.api.envelope import ErrorEnvelopeSchema, envelope_of, ok
from idp.api.schemas.upstreams import (UpstreamCreateSchema, UpstreamListQuerySchema, UpstreamSchema,
                                       UpstreamUpdateSchema)
from idp.api.security import BEARER_SECURITY, current_principal, management_required
from idp.federation.connectors import urls_for
from idp.federation.validation import validate_settings
from idp.models import Upstream
from idp.services import upstream_admin, upstreams
from idp.services.management_scopes import MANAGE_UPSTREAMS

blp = Blueprint("upstreams", __name__, url_prefix="/api/v1/upstreams",
                description="Upstream identity providers: OpenID Connect, Google, Microsoft, GitHub, SAML 2.0")

NOT_FOUND = {"schema": ErrorEnvelopeSchema,
             "description": "No such upstream or organization, or the caller may not manage it"}
FORBIDDEN = {"schema": ErrorEnvelopeSchema,
             "description": "The token lacks manage:upstreams, or the caller's role does not allow this (members; "
                            "email domains are for platform admins)"}
INVALID_QUERY = {"schema": ErrorEnvelopeSchema,
                 "description": "VALIDATION_ERROR: an unknown or malformed parameter, or a cursor of another list"}
CONFLICT = {"schema": ErrorEnvelopeSchema, "description": "Slug in use, or an email domain claimed by another upstream"}
INVALID = {"schema": ErrorEnvelopeSchema,
           "description": "VALIDATION_ERROR: a field is malformed, belongs to another kind, or the upstream refuted it "
                          "(discovery unreachable, issuer mismatch, URL not allowed); details name each field"}


def upstream_data(upstream: Upstream) -> dict:
    """The response body of one upstream: stored settings without secrets, and this IdP's URLs for it."""
    settings = upstream.settings or {}
    stored_secrets = upstreams.secrets_of(upstream)
    data = {"id": upstream.id, "slug": upstream.slug, "kind": upstream.kind, "display_name": upstream.display_name,
            "enabled": upstream.enabled, "organization_id": upstream.organization_id,
            "email_domains": list(upstream.email_domains or []), "scopes": list(upstream.scopes or []),
            "enforce_for_domains": upstream.enforce_for_domains, "role_mapping": upstream.role_mapping,
            "created_at": upstream.created_at, "updated_at": upstream.updated_at}
    shown = (*upstream_admin.KIND_SETTINGS[upstream.kind], *upstream_admin.KIND_DERIVED.get(upstream.kind, ()))
    data.update({name: settings[name] for name in shown if name in settings})
    data.update({f"{name}_set": bool(stored_secrets.get(name)) for name in upstream_admin.KIND_SECRETS[upstream.kind]})
    urls = urls_for(upstream.slug)
    data["login_url"] = urls.login
    if upstream.kind == "saml":
        data.update(sp_entity_id=urls.metadata, sp_metadata_url=urls.metadata, acs_url=urls.acs, sp_slo_url=urls.slo)
    else:
        data["redirect_uri"] = urls.callback
    return data


def upstream_etag(upstream: Upstream) -> str:
    """Changes with every stored change, secrets included (they are never shown, but they change the upstream)."""
    return etag_for(upstream.id, upstream.updated_at)


@blp.route("")
class UpstreamCollection(MethodView):
    @management_required(MANAGE_UPSTREAMS)
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(UpstreamListQuerySchema, location="query")
    @blp.response(200, envelope_of(UpstreamSchema, many=True, meta=PageMetaSchema),
                  description="The upstreams the caller manages, newest first")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(422, **INVALID_QUERY)
    def get(self, query: dict):
        """List the upstreams the caller may manage (platform admins: all)."""
        select = upstream_admin.upstreams_query(current_principal(), query.get("organization_id"))
        rows, next_cursor = paginate(select, columns=upstream_admin.UPSTREAM_ORDER, limit=query["limit"],
                                     cursor=query.get("cursor"))
        return ok([upstream_data(upstream) for upstream in rows], "Upstreams",
                  meta=page_meta(next_cursor, query["limit"]))

    @management_required(MANAGE_UPSTREAMS)
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(UpstreamCreateSchema)
    @blp.response(201, envelope_of(UpstreamSchema), headers=ETAG_HEADER,
                  description="Created, its settings checked with the upstream")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, **CONFLICT)
    @blp.alt_response(422, **INVALID)
    def post(self, data: dict):
        """Create an upstream (platform admins; owners and admins for their organization)."""
        upstream = upstream_admin.create_upstream(current_principal(), data, validate_settings)
        return with_etag((ok(upstream_data(upstream), "Upstream created", code=201), 201), upstream_etag(upstream))


@blp.route("/<upstream_id>")
class UpstreamItem(MethodView):
    @management_required(MANAGE_UPSTREAMS)
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, envelope_of(UpstreamSchema), headers=ETAG_HEADER)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    def get(self, upstream_id: str):
        """Get an upstream the caller may manage, with the ETag a PATCH or DELETE may send back in If-Match."""
        upstream = upstream_admin.get_upstream(current_principal(), upstream_id)
        return with_etag(ok(upstream_data(upstream), "Upstream"), upstream_etag(upstream))

    @management_required(MANAGE_UPSTREAMS)
    @blp.doc(security=BEARER_SECURITY, parameters=[IF_MATCH_PARAMETER])
    @blp.arguments(UpstreamUpdateSchema)
    @blp.response(200, envelope_of(UpstreamSchema), headers=ETAG_HEADER,
                  description="Updated; changed settings are checked again")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, **CONFLICT)
    @blp.alt_response(412, **PRECONDITION_FAILED_RESPONSE)
    @blp.alt_response(422, **INVALID)
    def patch(self, data: dict, upstream_id: str):
        """Change an upstream; kind and organization never change, and an omitted secret is kept."""
        principal = current_principal()
        upstream = upstream_admin.get_upstream(principal, upstream_id, for_update=True)
        check_if_match(upstream_etag(upstream))
        upstream = upstream_admin.update_upstream(principal, upstream, data, validate_settings)
        return with_etag(ok(upstream_data(upstream), "Upstream updated"), upstream_etag(upstream))

    @management_required(MANAGE_UPSTREAMS)
    @blp.doc(security=BEARER_SECURITY, parameters=[IF_MATCH_PARAMETER])
    @blp.response(200, envelope_of(None), description="Deleted, with the identities federated through it")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(412, **PRECONDITION_FAILED_RESPONSE)
    def delete(self, upstream_id: str):
        """Delete an upstream: nobody signs in through it any more."""
        principal = current_principal()
        upstream = upstream_admin.get_upstream(principal, upstream_id, for_update=True)
        check_if_match(upstream_etag(upstream))
        upstream_admin.delete_upstream(principal, upstream)
        return ok({}, "Upstream deleted")
