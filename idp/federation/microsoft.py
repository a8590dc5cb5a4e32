"""Microsoft Entra ID (kind `microsoft`): the OpenID Connect connector on Microsoft identity
platform v2.0 endpoints, for one tenant or many.

Settings: `tenant` (default `common`; `organizations`, `consumers`, a tenant id or a tenant's
domain), `authority` (default https://login.microsoftonline.com; a national cloud's otherwise),
`client_id`, optional `allowed_tenants` (tenant ids); secret `client_secret`.

Discovery lives at `<authority>/<tenant>/v2.0/.well-known/openid-configuration`. For `common` and
`organizations` its issuer is the template `<authority>/{tenantid}/v2.0`, so a token's `iss` must be
that template with `{tenantid}` replaced by the token's own `tid` (Microsoft identity platform,
"Validate the issuer"), and, with `allowed_tenants`, `tid` must be one of them (`tenant_not_allowed`).

The identity is `tid:oid`, the pair Microsoft documents as the stable, app-independent key (`oid`
needs the profile scope). The e-mail is never trusted: Entra's `email` and `preferred_username` are
set by the tenant's administrators and unverified (the 2023 "nOAuth" account takeovers). The
UserInfo endpoint is not read: it lives at Microsoft Graph and adds nothing the ID token lacks.
Groups and app roles come from the `groups` and `roles` claims.
"""
from __future__ import annotations

import re

from idp.federation import oidc_settings as fields
from idp.federation.connector import FederationRefused, UpstreamSettingsInvalid
from idp.federation.http import UpstreamHttp
from idp.federation.oidc import OIDCConnector, OIDCKind, email_of, strings_of
from idp.services.upstream_identity import UpstreamIdentity

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_TENANT = "common"
TEMPLATE = "{tenantid}"
MULTI_TENANT = ("common", "organizations")
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,253}")


def discovery_url(authority: str, tenant: str) -> str:
    """Microsoft identity platform v2.0: the tenant's OpenID configuration."""
    return f"{authority}/{tenant}/v2.0/.well-known/openid-configuration"


def issuer_fits(issuer: str, authority: str, tenant: str) -> bool:
    """Whether the discovered issuer is the one `tenant` has at `authority`: the `{tenantid}`
    template for the multi-tenant names, the tenant's own id otherwise."""
    prefix, suffix = f"{authority}/", "/v2.0"
    if not (issuer.startswith(prefix) and issuer.endswith(suffix)):
        return False
    middle = issuer[len(prefix):-len(suffix)]
    if tenant in MULTI_TENANT:
        return middle == TEMPLATE
    if tenant == "consumers":
        return middle == TEMPLATE or GUID.fullmatch(middle) is not None
    if GUID.fullmatch(tenant):
        return middle == tenant
    return GUID.fullmatch(middle) is not None


class MicrosoftConnector(OIDCConnector):
    use_userinfo = False

    @property
    def authority(self) -> str:
        return self.config.settings["authority"]

    def discovery_url(self) -> str:
        return discovery_url(self.authority, self.config.settings["tenant"])

    def check_discovered_issuer(self, issuer: str) -> None:
        if not issuer_fits(issuer, self.authority, self.config.settings["tenant"]):
            raise FederationRefused("discovery_invalid", detail=f"discovery names the issuer {issuer!r}")

    def is_own_issuer(self, iss: str, metadata: dict) -> bool:
        """RFC 9207 with a templated issuer: the template with some tenant id in it."""
        issuer = metadata["issuer"]
        if TEMPLATE not in issuer:
            return iss == issuer
        pattern = re.escape(issuer).replace(re.escape(TEMPLATE), GUID.pattern)
        return re.fullmatch(pattern, iss) is not None

    def check_issuer(self, claims: dict, metadata: dict) -> None:
        """`iss` is the discovered issuer with `{tenantid}` replaced by the token's `tid`:
        iss_mismatch; `tid` one of `allowed_tenants` when set: tenant_not_allowed."""
        tid = claims.get("tid")
        if not isinstance(tid, str) or not GUID.fullmatch(tid):
            raise FederationRefused("iss_mismatch", detail=f"ID token tid {tid!r} is not a tenant id")
        expected = metadata["issuer"].replace(TEMPLATE, tid)
        if claims.get("iss") != expected:
            raise FederationRefused("iss_mismatch", detail=f"ID token iss {claims.get('iss')!r}, expected {expected!r}")
        allowed = self.config.settings.get("allowed_tenants")
        if allowed and tid not in allowed:
            raise FederationRefused("tenant_not_allowed", "Accounts of this organization cannot sign in here.",
                                    detail=f"tenant {tid} is not in allowed_tenants")

    def authorization_params(self) -> dict:
        """The account chooser, so a browser signed in to one Microsoft account can pick another."""
        return {"prompt": "select_account"}

    def identity_from(self, claims: dict) -> UpstreamIdentity:
        """`tid:oid`, the e-mail never trusted, groups from `groups` and `roles` (module docstring)."""
        oid = claims.get("oid")
        if not isinstance(oid, str) or not GUID.fullmatch(oid):
            raise FederationRefused("sub_invalid", detail="the ID token has no oid (the profile scope asks for it)")
        email = email_of(claims.get("email")) or email_of(claims.get("preferred_username"))
        groups = tuple(dict.fromkeys(strings_of(claims.get("groups")) + strings_of(claims.get("roles"))))
        return self.identity(f"{claims['tid']}:{oid}", claims, email, False, groups)


class MicrosoftKind(OIDCKind):
    name = "microsoft"
    label = "Continue with Microsoft"
    icon = "microsoft.svg"
    connector_class = MicrosoftConnector
    settings_fields = {"tenant", "authority", "client_id", "allowed_tenants"}

    def check_fields(self, settings: dict, http: UpstreamHttp, errors: dict) -> dict:
        settings["authority"] = (settings.get("authority") or DEFAULT_AUTHORITY)
        if isinstance(settings["authority"], str):
            settings["authority"] = settings["authority"].rstrip("/")
        stored = {"authority": fields.url_field(settings, "authority", http, errors),
                  "tenant": _tenant_field(settings, errors)}
        allowed = _tenant_ids(settings.get("allowed_tenants"), errors)
        if allowed:
            stored["allowed_tenants"] = allowed
        return stored

    def check_provider(self, stored: dict, http: UpstreamHttp) -> None:
        authority, tenant = stored["authority"], stored["tenant"]
        url = discovery_url(authority, tenant)
        issuer = fields.read_discovery(http, url, "tenant")["issuer"]
        if not issuer_fits(issuer, authority, tenant):
            shape = f"{authority}/{TEMPLATE}/v2.0" if tenant in MULTI_TENANT else f"{authority}/<tenant id>/v2.0"
            raise UpstreamSettingsInvalid({"tenant": f"the discovery document at {url} names the issuer "
                                                     f"{issuer!r}, not {shape}"})


def _tenant_field(settings: dict, errors: dict) -> str | None:
    tenant = settings.get("tenant") or DEFAULT_TENANT
    if not isinstance(tenant, str) or not TENANT_NAME.fullmatch(tenant.lower()):
        errors["tenant"] = "must be common, organizations, consumers, a tenant id or a tenant's domain"
        return None
    return tenant.lower()


def _tenant_ids(value, errors: dict) -> list[str]:
    if value is None or value == []:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and GUID.fullmatch(v.lower()) for v in value):
        errors["allowed_tenants"] = "must be a list of tenant ids (GUIDs)"
        return []
    return list(dict.fromkeys(v.lower() for v in value))


KIND = MicrosoftKind()
