"""Schemas of /api/v1/upstreams: upstream identity providers, in one flat shape for every kind.

A request carries the common fields and its kind's own settings side by side (issue 10's field
list); a setting of another kind is refused. Secrets (`client_secret`, `sp_private_key`) are
write-only: responses say only whether one is stored (`client_secret_set`).
"""
from __future__ import annotations

import marshmallow as ma

from idp.api.conventions import PageArgsSchema
from idp.api.schemas.organizations import SLUG_PATTERN
from idp.api.schemas.text import SINGLE_LINE_PATTERN, TrimmedString, line, validate_single_line
from idp.services.upstream_admin import KINDS

MAPPABLE_ROLES = ["admin", "member"]  # "owner" is never granted by an upstream
DOMAIN_PATTERN = r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$"
# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_PATTERN = r"^[\x21\x23-\x5B\x5D-\x7E]+$"
KIND_HELP = {
    "issuer": "oidc, google: the OpenID provider's issuer; discovery must name exactly it "
              "(google: default https://accounts.google.com)",
    "trust_email_verified": "oidc, platform-wide: believe the provider's email_verified (platform admins only; "
                            "default false)",
    "client_id": "oidc, google, microsoft, github: the client id registered upstream",
    "client_secret": "oidc, google, microsoft, github: write-only; a PATCH without it keeps the stored one",
    "tenant": "microsoft: directory (tenant) id, or common, organizations, consumers (default common)",
    "authority": "microsoft: default https://login.microsoftonline.com",
    "allowed_tenants": "microsoft, multi-tenant: the tenant ids (tid) allowed to sign in; all when empty",
    "base_url": "github: default https://github.com (GitHub Enterprise Server: its URL)",
    "api_url": "github: default https://api.github.com (Enterprise Server: <base_url>/api/v3)",
    "metadata_url": "saml: the IdP's metadata URL (or give metadata_xml, or entity_id, sso_url and certificates)",
    "metadata_xml": "saml: the IdP's metadata document",
    "entity_id": "saml: the IdP's entity ID, without metadata",
    "sso_url": "saml: the IdP's SingleSignOnService URL (HTTP-Redirect), without metadata",
    "slo_url": "saml: the IdP's SingleLogoutService URL (default: from the metadata)",
    "name_id_attribute": "saml: the attribute identifying the user instead of a persistent NameID",
    "email_attribute": "saml: the attribute holding the e-mail address (default: the usual names)",
    "name_attribute": "saml: the attribute holding the display name",
    "groups_attribute": "saml: the attribute holding the groups (for role_mapping)",
    "certificates": "saml: the IdP's signing certificates (PEM or base64 DER), without metadata",
    "allow_idp_initiated": "saml: accept unsolicited (IdP-initiated) responses (default false)",
    "sp_private_key": "saml: write-only PEM key signing AuthnRequests; this IdP makes one when omitted",
}


def _doc(name: str, **extra) -> dict:
    return {"metadata": {"description": KIND_HELP[name], **extra.pop("metadata", {})}, **extra}


class Domain(TrimmedString):
    """A domain name, lower-cased (home-realm discovery compares it to an address's domain)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).lower().rstrip(".")


def url_field(name: str) -> ma.fields.Url:
    return ma.fields.Url(schemes={"http", "https"}, require_tld=False, allow_none=True,
                         validate=ma.validate.Length(max=2000), **_doc(name))


def secret_field(name: str) -> ma.fields.String:
    return ma.fields.String(load_only=True, allow_none=True,
                            validate=[ma.validate.Length(min=1, max=20000)], **_doc(name))


def slug_field(**kwargs) -> ma.fields.String:
    return ma.fields.String(validate=[
        ma.validate.Length(min=2, max=64),
        ma.validate.Regexp(SLUG_PATTERN, error="Use lowercase letters, digits and single hyphens."),
    ], metadata={"description": "URL name, unique; part of this IdP's redirect URI and SAML entity ID",
                 "example": "acme-okta"}, **kwargs)


class RoleMappingSchema(ma.Schema):
    claim = line(200, required=True, metadata={"description": "Claim (OIDC) or attribute (SAML) to read",
                                               "example": "groups"})
    map = ma.fields.Dict(keys=ma.fields.String(validate=[ma.validate.Length(min=1, max=200), validate_single_line],
                                               metadata={"pattern": SINGLE_LINE_PATTERN}),
                         values=ma.fields.String(validate=ma.validate.OneOf(MAPPABLE_ROLES),
                                                 metadata={"enum": MAPPABLE_ROLES}),
                         required=True, validate=ma.validate.Length(max=200),
                         metadata={"description": "Claim value -> organization role (admin or member; never owner)",
                                   "example": {"idp-admins": "admin"}})


class UpstreamFieldsSchema(ma.Schema):
    """The fields a create and an update share."""

    slug = slug_field()
    display_name = line(200, metadata={"description": "Shown on the sign-in button", "example": "Acme SSO"})
    enabled = ma.fields.Boolean(metadata={"description": "A disabled upstream signs nobody in (default true)"})
    email_domains = ma.fields.List(
        Domain(validate=ma.validate.Regexp(DOMAIN_PATTERN, error="Not a valid domain name."),
               metadata={"pattern": DOMAIN_PATTERN, "example": "acme.example"}),
        validate=ma.validate.Length(max=50),
        metadata={"description": "Domains whose addresses sign in here (home-realm discovery); each belongs to "
                                 "one upstream only; platform admins only"})
    scopes = ma.fields.List(ma.fields.String(validate=[ma.validate.Length(min=1, max=200),
                                                       ma.validate.Regexp(SCOPE_PATTERN, error="Not a scope token.")],
                                             metadata={"pattern": SCOPE_PATTERN}),
                            validate=ma.validate.Length(max=50),
                            metadata={"description": "Scopes asked upstream (OAuth kinds; empty: the kind's default)"})
    enforce_for_domains = ma.fields.Boolean(metadata={
        "description": "Refuse password sign-in for email_domains' addresses (default false; platform admins only)"})
    role_mapping = ma.fields.Nested(RoleMappingSchema, allow_none=True, metadata={
        "description": "An organization's upstream: organization role from a claim (default member)"})
    issuer = url_field("issuer")
    trust_email_verified = ma.fields.Boolean(allow_none=True, **_doc("trust_email_verified"))
    client_id = line(1000, allow_none=True, **_doc("client_id"))
    client_secret = secret_field("client_secret")
    tenant = line(200, allow_none=True, **_doc("tenant"))
    authority = url_field("authority")
    allowed_tenants = ma.fields.List(line(200), allow_none=True, validate=ma.validate.Length(max=200),
                                     **_doc("allowed_tenants"))
    base_url = url_field("base_url")
    api_url = url_field("api_url")
    metadata_url = url_field("metadata_url")
    metadata_xml = ma.fields.String(allow_none=True, validate=ma.validate.Length(min=1, max=500_000),
                                    **_doc("metadata_xml"))
    entity_id = line(2000, allow_none=True, **_doc("entity_id"))
    sso_url = url_field("sso_url")
    slo_url = url_field("slo_url")
    name_id_attribute = line(512, allow_none=True, **_doc("name_id_attribute"))
    email_attribute = line(512, allow_none=True, **_doc("email_attribute"))
    name_attribute = line(512, allow_none=True, **_doc("name_attribute"))
    groups_attribute = line(512, allow_none=True, **_doc("groups_attribute"))
    certificates = ma.fields.List(ma.fields.String(validate=ma.validate.Length(min=1, max=20000)), allow_none=True,
                                  validate=ma.validate.Length(max=10), **_doc("certificates"))
    allow_idp_initiated = ma.fields.Boolean(allow_none=True, **_doc("allow_idp_initiated"))
    sp_private_key = secret_field("sp_private_key")

    @ma.post_load
    def distinct_domains(self, data: dict, **kwargs) -> dict:
        if "email_domains" in data:
            data["email_domains"] = list(dict.fromkeys(data["email_domains"]))
        return data


def kind_field(**kwargs) -> ma.fields.String:
    return ma.fields.String(validate=ma.validate.OneOf(KINDS), metadata={"enum": list(KINDS), **kwargs.pop(
        "metadata", {})}, **kwargs)


class UpstreamCreateSchema(UpstreamFieldsSchema):
    slug = slug_field(required=True)
    kind = kind_field(required=True, metadata={"description": "Never changes after creation"})
    display_name = line(200, required=True, metadata={"description": "Shown on the sign-in button",
                                                      "example": "Acme SSO"})
    organization_id = ma.fields.String(allow_none=True, validate=ma.validate.Length(min=1, max=36), metadata={
        "description": "The organization whose upstream this is; null: platform-wide (platform admins only)"})


class UpstreamUpdateSchema(UpstreamFieldsSchema):
    kind = kind_field(metadata={"description": "Accepted only unchanged: the kind never changes"})
    organization_id = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=36), metadata={
        "description": "Accepted only unchanged: an upstream never moves between organizations"})

    @ma.validates_schema
    def require_a_change(self, data: dict, **kwargs) -> None:
        if not data:
            raise ma.ValidationError("Give at least one field to change.")


class UpstreamListQuerySchema(PageArgsSchema):
    organization_id = ma.fields.String(validate=ma.validate.Length(min=1, max=36),
                                       metadata={"description": "Only this organization's upstreams"})


class UpstreamSchema(ma.Schema):
    """An upstream as the API answers it: every stored setting but the secrets."""

    id = ma.fields.String()
    slug = ma.fields.String()
    kind = ma.fields.String(metadata={"enum": list(KINDS)})
    display_name = ma.fields.String()
    enabled = ma.fields.Boolean()
    organization_id = ma.fields.String(allow_none=True)
    email_domains = ma.fields.List(ma.fields.String())
    scopes = ma.fields.List(ma.fields.String())
    enforce_for_domains = ma.fields.Boolean()
    role_mapping = ma.fields.Dict(allow_none=True)
    issuer = ma.fields.String(allow_none=True)
    trust_email_verified = ma.fields.Boolean(allow_none=True)
    client_id = ma.fields.String(allow_none=True)
    client_secret_set = ma.fields.Boolean(metadata={"description": "Whether a client secret is stored"})
    tenant = ma.fields.String(allow_none=True)
    authority = ma.fields.String(allow_none=True)
    allowed_tenants = ma.fields.List(ma.fields.String(), allow_none=True)
    base_url = ma.fields.String(allow_none=True)
    api_url = ma.fields.String(allow_none=True)
    metadata_url = ma.fields.String(allow_none=True)
    metadata_xml = ma.fields.String(allow_none=True)
    entity_id = ma.fields.String(allow_none=True)
    sso_url = ma.fields.String(allow_none=True)
    slo_url = ma.fields.String(allow_none=True, metadata={"description": "saml: the IdP's Single Logout URL"})
    name_id_attribute = ma.fields.String(allow_none=True)
    email_attribute = ma.fields.String(allow_none=True)
    name_attribute = ma.fields.String(allow_none=True)
    groups_attribute = ma.fields.String(allow_none=True)
    certificates = ma.fields.List(ma.fields.String(), allow_none=True)
    retiring_certificates = ma.fields.List(ma.fields.String(), allow_none=True, metadata={
        "description": "saml: certificates from older metadata, still accepted until a current one verifies"})
    metadata_fetched_at = ma.fields.String(allow_none=True, metadata={"description": "saml: when metadata_url was read"})
    sp_certificate = ma.fields.String(allow_none=True, metadata={
        "description": "saml: this SP's certificate (in its metadata): signs AuthnRequests, encrypts assertions"})
    allow_idp_initiated = ma.fields.Boolean(allow_none=True)
    sp_private_key_set = ma.fields.Boolean(metadata={"description": "Whether an SP private key is stored"})
    login_url = ma.fields.String(metadata={"description": "Starts a sign-in through this upstream"})
    redirect_uri = ma.fields.String(metadata={"description": "OAuth kinds: the redirect URI to register upstream"})
    sp_entity_id = ma.fields.String(metadata={"description": "saml: this SP's entity ID (its metadata URL)"})
    sp_metadata_url = ma.fields.String(metadata={"description": "saml: the SP metadata to hand the IdP's admin"})
    acs_url = ma.fields.String(metadata={"description": "saml: the Assertion Consumer Service URL (HTTP-POST)"})
    sp_slo_url = ma.fields.String(metadata={"description": "saml: this SP's Single Logout URL"})
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
