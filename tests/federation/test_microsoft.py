"""The Microsoft preset against an Entra-shaped stand-in provider over loopback."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from idp.federation import microsoft
from idp.federation.connector import FederationRefused, UpstreamConfig, UpstreamSettingsInvalid
from idp.federation.http import UpstreamHttp
from tests.federation.standins.oidc_provider import HOME_TENANT, default_user, running, sign_in, upstream_urls

HTTP = UpstreamHttp(allow_private=True, timeout=5)
PRODUCTION_HTTP = UpstreamHttp(allow_private=False, timeout=5)
GUEST_TENANT = "b9b7c6a1-0000-4000-8000-0000000000aa"
OID = default_user("entra")["oid"]


@pytest.fixture
def provider():
    yield from running("entra")


def connector_for(provider, tenant="common", **settings):
    values = {"authority": provider.authority, "tenant": tenant, "client_id": provider.client_id, **settings}
    upstream = UpstreamConfig(id="up-m", slug="microsoft", kind="microsoft", display_name="Microsoft",
                              settings=values, secrets={"client_secret": provider.client_secret})
    return microsoft.KIND.open(upstream, upstream_urls("microsoft"), HTTP)


def refusal(provider, **settings) -> FederationRefused:
    with pytest.raises(FederationRefused) as caught:
        sign_in(connector_for(provider, **settings))
    return caught.value


def test_single_tenant_sign_in_answers_tid_and_oid(provider):
    """Microsoft identity platform: tid + oid is the stable key for a user across apps; the e-mail is never the key."""
    identity = sign_in(connector_for(provider, tenant=HOME_TENANT))
    assert (identity.subject, identity.email, identity.name) == (
        f"{HOME_TENANT}:{OID}", "ada@contoso.example", "Ada Lovelace")


def test_entra_email_is_never_verified(provider):
    """nOAuth (Descope, 2023): Entra's email claim is tenant-controlled and unverified; it never vouches for an address."""
    provider.set_user({**default_user("entra"), "email_verified": True})
    assert sign_in(connector_for(provider)).email_verified is False


def test_multi_tenant_accepts_a_user_of_any_tenant(provider):
    """Microsoft identity platform, multi-tenant apps: iss is the {tenantid} template filled with the token's tid."""
    provider.set_user({**default_user("entra"), "tid": GUEST_TENANT})
    assert sign_in(connector_for(provider)).subject == f"{GUEST_TENANT}:{OID}"


def test_multi_tenant_refuses_an_iss_of_another_tenant_than_tid(provider):
    """Microsoft identity platform, "Validate the issuer": iss must be the template with this token's tid, not any tenant's."""
    provider.id_token_claims = {"tid": GUEST_TENANT}
    assert refusal(provider).reason == "iss_mismatch"


def test_token_without_a_tenant_id_is_refused(provider):
    """Microsoft identity platform: without tid the {tenantid} template cannot be checked."""
    provider.id_token_claims = {"tid": None}
    assert refusal(provider).reason == "iss_mismatch"


def test_single_tenant_refuses_a_token_of_another_tenant(provider):
    """Core 3.1.3.7 step 2: a single-tenant upstream's issuer is that tenant's, exactly."""
    provider.set_user({**default_user("entra"), "tid": GUEST_TENANT})
    assert refusal(provider, tenant=HOME_TENANT).reason == "iss_mismatch"


def test_allowed_tenants_refuse_other_tenants(provider):
    """Issue 10: a multi-tenant upstream with allowed_tenants signs in only those tenants' users."""
    provider.set_user({**default_user("entra"), "tid": GUEST_TENANT})
    assert refusal(provider, allowed_tenants=[HOME_TENANT]).reason == "tenant_not_allowed"


def test_allowed_tenants_accept_their_users(provider):
    """Issue 10: a tenant in allowed_tenants signs in."""
    assert sign_in(connector_for(provider, allowed_tenants=[HOME_TENANT])).subject == f"{HOME_TENANT}:{OID}"


def test_iss_parameter_of_another_authority_is_refused(provider):
    """RFC 9207 2.4 with a templated issuer: the iss must be this authority's template with a tenant id."""
    provider.iss_parameter = f"https://attacker.example/{HOME_TENANT}/v2.0"
    assert refusal(provider).reason == "iss_mismatch"
    assert provider.hits["token"] == 0


def test_iss_parameter_of_a_tenant_under_the_template_is_accepted(provider):
    """RFC 9207 2.4: a tenant's own issuer matches the {tenantid} template."""
    provider.iss_parameter = f"{provider.base}/{HOME_TENANT}/v2.0"
    assert sign_in(connector_for(provider)).subject == f"{HOME_TENANT}:{OID}"


def test_email_falls_back_to_preferred_username(provider):
    """Microsoft ID token claims: without the optional email claim, preferred_username is the sign-in address."""
    provider.set_user({k: v for k, v in default_user("entra").items() if k != "email"})
    assert sign_in(connector_for(provider)).email == "ada@contoso.example"


def test_preferred_username_that_is_not_an_address_is_no_email(provider):
    """Microsoft ID token claims: preferred_username may be a phone number or a name; it is mutable and not an address."""
    user = {k: v for k, v in default_user("entra").items() if k != "email"}
    provider.set_user({**user, "preferred_username": "+1 555 0100"})
    assert sign_in(connector_for(provider)).email is None


def test_token_without_oid_is_refused(provider):
    """Microsoft identity platform: oid (with the profile scope) is half of the identity key."""
    provider.id_token_claims = {"oid": None}
    assert refusal(provider).reason == "sub_invalid"


def test_groups_and_roles_become_groups(provider):
    """Issue 10: a role mapping from the groups claim; Entra app roles arrive in roles."""
    provider.set_user({**default_user("entra"), "groups": ["g-1"], "roles": ["idp-admins", "g-1"]})
    assert sign_in(connector_for(provider)).groups == ("g-1", "idp-admins")


def test_the_userinfo_endpoint_is_not_read(provider):
    """Microsoft's UserInfo lives at Graph and adds nothing the ID token lacks; one request fewer."""
    sign_in(connector_for(provider))
    assert provider.hits["userinfo"] == 0


def test_authorization_request_goes_to_the_tenant_path_with_select_account(provider):
    """Microsoft identity platform v2.0: /<tenant>/oauth2/v2.0/authorize; prompt=select_account for the account chooser."""
    start = connector_for(provider).begin("s")
    parts = urlsplit(start.url)
    assert (parts.path, dict(parse_qsl(parts.query))["prompt"]) == ("/common/oauth2/v2.0/authorize", "select_account")


def test_client_secret_basic_is_used_when_offered(provider):
    """Discovery 1.0 section 3: Entra lists client_secret_basic among its methods."""
    sign_in(connector_for(provider))
    assert provider.token_requests[0]["auth_method"] == "client_secret_basic"


# -- validate ------------------------------------------------------------------------------------

def test_validate_fills_in_the_defaults_and_checks_the_template(provider):
    """Issue 10: tenant defaults to common; its discovery names the {tenantid} template."""
    stored = microsoft.KIND.validate({"authority": provider.authority + "/", "client_id": "c"},
                                     {"client_secret": "s"}, HTTP)
    assert stored == ({"authority": provider.authority, "tenant": "common", "client_id": "c"}, {"client_secret": "s"})


@pytest.mark.parametrize("tenant", ["organizations", "consumers", HOME_TENANT, "contoso.onmicrosoft.com"])
def test_validate_accepts_each_kind_of_tenant(provider, tenant):
    """Microsoft identity platform: organizations (template), consumers and single tenants (a tenant id in the issuer)."""
    settings, _ = microsoft.KIND.validate({"authority": provider.authority, "tenant": tenant, "client_id": "c"},
                                          {"client_secret": "s"}, HTTP)
    assert settings["tenant"] == tenant


def test_validate_refuses_a_multi_tenant_discovery_without_the_template(provider):
    """Discovery 1.0 section 4.3: for common the issuer must be <authority>/{tenantid}/v2.0."""
    provider.metadata = {"issuer": f"{provider.base}/{GUEST_TENANT}/v2.0"}
    with pytest.raises(UpstreamSettingsInvalid) as caught:
        microsoft.KIND.validate({"authority": provider.authority, "client_id": "c"}, {"client_secret": "s"}, HTTP)
    url = f"{provider.authority}/common/v2.0/.well-known/openid-configuration"
    assert caught.value.errors == {"tenant": f"the discovery document at {url} names the issuer "
                                             f"'{provider.base}/{GUEST_TENANT}/v2.0', not "
                                             f"{provider.authority}/{{tenantid}}/v2.0"}


def test_validate_refuses_a_single_tenant_discovery_of_another_tenant(provider):
    """Discovery 1.0 section 4.3: a tenant id's discovery names that tenant's issuer."""
    provider.metadata = {"issuer": f"{provider.base}/{GUEST_TENANT}/v2.0"}
    with pytest.raises(UpstreamSettingsInvalid) as caught:
        microsoft.KIND.validate({"authority": provider.authority, "tenant": HOME_TENANT, "client_id": "c"},
                                {"client_secret": "s"}, HTTP)
    assert list(caught.value.errors) == ["tenant"]


def test_validate_refuses_malformed_tenant_and_allowed_tenants(provider):
    """Issue 10: a validation error that names each bad field."""
    with pytest.raises(UpstreamSettingsInvalid) as caught:
        microsoft.KIND.validate({"authority": provider.authority, "tenant": "../common", "client_id": "c",
                                 "allowed_tenants": ["contoso"]}, {"client_secret": "s"}, HTTP)
    assert caught.value.errors == {
        "tenant": "must be common, organizations, consumers, a tenant id or a tenant's domain",
        "allowed_tenants": "must be a list of tenant ids (GUIDs)"}


def test_validate_refuses_a_plain_http_authority_in_production():
    """Issue 10: in production every upstream URL must be https."""
    with pytest.raises(UpstreamSettingsInvalid) as caught:
        microsoft.KIND.validate({"authority": "http://login.example", "client_id": "c"}, {"client_secret": "s"},
                                PRODUCTION_HTTP)
    assert caught.value.errors == {"authority": "is not allowed: authority scheme 'http' is not allowed"}


def test_validate_refuses_a_loopback_authority_in_production():
    """Issue 10 (SSRF): in production an upstream must resolve to public addresses."""
    with pytest.raises(UpstreamSettingsInvalid) as caught:
        microsoft.KIND.validate({"authority": "https://127.0.0.1", "client_id": "c"}, {"client_secret": "s"},
                                PRODUCTION_HTTP)
    assert caught.value.errors == {"authority": "is not allowed: authority resolves to a non-public address 127.0.0.1"}


def test_kind_describes_its_button():
    """Issue 10: the provider's usual wording and a local mark."""
    assert (microsoft.KIND.label, microsoft.KIND.icon, microsoft.KIND.SECRET_FIELDS) == (
        "Continue with Microsoft", "microsoft.svg", ("client_secret",))
