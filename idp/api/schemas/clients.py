"""Schemas of /api/v1/clients: OAuth clients with RFC 7591's metadata names (as /oauth2/register)
plus this server's policy fields. The secret is write-never: it appears once, in the answer that
made it (creation, rotation), and nowhere else.

The schemas check shapes and sizes; the metadata rules (redirect URIs, grant and response types,
auth methods, jwks vs jwks_uri, logout URIs) are idp.services.client_metadata's, the same as
/oauth2/register applies.
"""
from __future__ import annotations

import marshmallow as ma

from idp.api.conventions import PageArgsSchema, StrictSchema
from idp.api.schemas.text import SINGLE_LINE_PATTERN, line, validate_single_line
from idp.services.client_admin import MAX_GRACE_PERIOD

URI_LIMIT = 500
MAX_URIS = 50
MAX_REFRESH_TOKEN_LIFETIME = 365 * 86400


def _uri(description: str, **kwargs) -> ma.fields.String:
    return ma.fields.String(allow_none=True, validate=[ma.validate.Length(min=1, max=URI_LIMIT), validate_single_line],
                            metadata={"description": description, "pattern": SINGLE_LINE_PATTERN}, **kwargs)


def _uri_list(description: str) -> ma.fields.List:
    item = ma.fields.String(validate=[ma.validate.Length(min=1, max=URI_LIMIT), validate_single_line],
                            metadata={"pattern": SINGLE_LINE_PATTERN})
    return ma.fields.List(item, validate=ma.validate.Length(max=MAX_URIS), metadata={"description": description})


def _names(description: str, choices: list[str]) -> ma.fields.List:
    return ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(choices)),
                          validate=ma.validate.Length(max=len(choices)), metadata={"description": description})


class JwksSchema(ma.Schema):
    """RFC 7517 5: a JWK Set of public keys (checked as /oauth2/register checks it)."""

    class Meta:
        unknown = ma.INCLUDE

    keys = ma.fields.List(ma.fields.Dict(), required=True, validate=ma.validate.Length(min=1, max=20))


class ClientFieldsSchema(StrictSchema):
    """The writable fields; a null clears an optional one."""

    client_name = line(200, metadata={"description": "RFC 7591 2: shown to end users on the consent page"})
    redirect_uris = _uri_list("RFC 7591 2: exact redirect URIs (required for authorization_code)")
    post_logout_redirect_uris = _uri_list("RP-Initiated Logout 1.0 3.1: where /oauth2/logout may return")
    grant_types = _names("RFC 7591 2 (default authorization_code)",
                         ["authorization_code", "refresh_token", "client_credentials"])
    response_types = _names("RFC 7591 2 (default code)", ["code"])
    scope = ma.fields.String(validate=[ma.validate.Length(min=1, max=1000), validate_single_line], metadata={
        "description": "RFC 7591 2: space-separated scopes the client may ask for (default: the standard OIDC "
                       "scopes); management scopes such as manage:clients only from a platform admin",
        "pattern": SINGLE_LINE_PATTERN, "example": "openid profile email"})
    token_endpoint_auth_method = ma.fields.String(
        validate=ma.validate.OneOf(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]),
        metadata={"description": "RFC 7591 2 (default client_secret_basic; none: a public client, PKCE required)"})
    jwks = ma.fields.Nested(JwksSchema, allow_none=True,
                            metadata={"description": "RFC 7591 2: public keys for private_key_jwt; not with jwks_uri"})
    jwks_uri = _uri("RFC 7591 2: URL of the client's JWK Set; not with jwks")
    logo_uri = _uri("RFC 7591 2: logo shown on the consent page")
    client_uri = _uri("RFC 7591 2: the client's home page")
    policy_uri = _uri("RFC 7591 2: privacy policy, linked on the consent page")
    tos_uri = _uri("RFC 7591 2: terms of service, linked on the consent page")
    id_token_signed_response_alg = ma.fields.String(validate=ma.validate.OneOf(["RS256", "ES256"]), metadata={
        "description": "OIDC Registration 2 (default RS256); the provider must have an active key for it"})
    backchannel_logout_uri = _uri("Back-Channel Logout 1.0 2.2: where logout tokens are POSTed")
    backchannel_logout_session_required = ma.fields.Boolean(metadata={"description": "BCL 1.0 2.2"})
    frontchannel_logout_uri = _uri("Front-Channel Logout 1.0 2: framed on sign-out; origin of a redirect URI")
    frontchannel_logout_session_required = ma.fields.Boolean(metadata={"description": "FCL 1.0 2"})
    require_pkce = ma.fields.Boolean(metadata={"description": "PKCE (S256) even for a confidential client"})
    first_party = ma.fields.Boolean(metadata={"description": "Skip the consent page (platform admins only)"})
    access_token_lifetime = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(min=60, max=86400), metadata={
        "description": "Seconds, at most ACCESS_TOKEN_LIFETIME; null: ACCESS_TOKEN_LIFETIME"})
    refresh_token_lifetime = ma.fields.Integer(
        allow_none=True, validate=ma.validate.Range(min=300, max=MAX_REFRESH_TOKEN_LIFETIME),
        metadata={"description": "Seconds; null: REFRESH_TOKEN_LIFETIME"})
    is_active = ma.fields.Boolean(metadata={"description": "false: deactivated, refused everywhere within a second"})


class ClientCreateSchema(ClientFieldsSchema):
    organization_id = ma.fields.String(allow_none=True, validate=ma.validate.Length(min=1, max=36), metadata={
        "description": "The owning organization (its owners and admins manage the client); null: a platform "
                       "client (platform admins only)"})


class ClientUpdateSchema(ClientFieldsSchema):
    """Only the fields given change; the organization never does."""


class ClientListQuerySchema(PageArgsSchema):
    organization_id = ma.fields.String(validate=ma.validate.Length(min=1, max=36),
                                       metadata={"description": "Only this organization's clients"})
    q = ma.fields.String(validate=[ma.validate.Length(min=1, max=200), validate_single_line],
                         metadata={"description": "Part of the client_name or client_id (case-insensitive)",
                                   "pattern": SINGLE_LINE_PATTERN})


class ClientSchema(ma.Schema):
    class Meta:
        ordered = True

    id = ma.fields.String()
    client_id = ma.fields.String(metadata={"description": "RFC 7591 3.2.1; the {client_id} of this resource's URL"})
    client_name = ma.fields.String()
    organization_id = ma.fields.String(allow_none=True)
    redirect_uris = ma.fields.List(ma.fields.String())
    post_logout_redirect_uris = ma.fields.List(ma.fields.String())
    grant_types = ma.fields.List(ma.fields.String())
    response_types = ma.fields.List(ma.fields.String())
    scope = ma.fields.String()
    token_endpoint_auth_method = ma.fields.String()
    jwks = ma.fields.Dict(allow_none=True)
    jwks_uri = ma.fields.String(allow_none=True)
    logo_uri = ma.fields.String(allow_none=True)
    client_uri = ma.fields.String(allow_none=True)
    policy_uri = ma.fields.String(allow_none=True)
    tos_uri = ma.fields.String(allow_none=True)
    id_token_signed_response_alg = ma.fields.String()
    backchannel_logout_uri = ma.fields.String(allow_none=True)
    backchannel_logout_session_required = ma.fields.Boolean()
    frontchannel_logout_uri = ma.fields.String(allow_none=True)
    frontchannel_logout_session_required = ma.fields.Boolean()
    require_pkce = ma.fields.Boolean()
    first_party = ma.fields.Boolean()
    access_token_lifetime = ma.fields.Integer(allow_none=True)
    refresh_token_lifetime = ma.fields.Integer(allow_none=True)
    is_active = ma.fields.Boolean()
    has_secret = ma.fields.Boolean(metadata={"description": "Whether a secret is set (never the secret itself)"})
    previous_secret_expires_at = ma.fields.DateTime(allow_none=True, metadata={
        "description": "Until when the secret before the last rotation is still accepted"})
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class ClientCreatedSchema(ClientSchema):
    client_secret = ma.fields.String(allow_none=True, metadata={
        "description": "Shown this once (null for none and private_key_jwt clients); only its hash is kept"})


class SecretRotationSchema(StrictSchema):
    grace_period = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0, max=MAX_GRACE_PERIOD), metadata={
        "description": f"Seconds the old secret stays valid (0 to {MAX_GRACE_PERIOD}, default 0: at once invalid)"})


class SecretSchema(ma.Schema):
    client_id = ma.fields.String()
    client_secret = ma.fields.String(metadata={"description": "The new secret, shown this once"})
    previous_secret_expires_at = ma.fields.DateTime(allow_none=True, metadata={
        "description": "Until when the old secret is accepted (null: no longer)"})
