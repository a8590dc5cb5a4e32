"""The generic OpenID Connect connector against a stand-in provider over loopback."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from idp.federation import oidc
from idp.federation.connector import FederationRefused, UpstreamConfig, UpstreamSettingsInvalid
from idp.federation.http import UpstreamHttp
from idp.federation.oidc_metadata import clear_cache
from tests.federation.standins.oidc_provider import follow_authorize, running, sign_in, upstream_urls

HTTP = UpstreamHttp(allow_private=True, timeout=5)
PRODUCTION_HTTP = UpstreamHttp(allow_private=False, timeout=5)


@pytest.fixture
def provider():
    yield from running("generic")


def connector_for(provider, *, settings=None, **config):
    values = {"issuer": provider.issuer, "client_id": provider.client_id, **(settings or {})}
    upstream = UpstreamConfig(id="up-1", slug="corp", kind="oidc", display_name="Corp SSO", settings=values,
                              secrets={"client_secret": provider.client_secret}, **config)
    return oidc.KIND.open(upstream, upstream_urls("corp"), HTTP)


def refusal(provider, connector=None, **sign_in_options) -> FederationRefused:
    with pytest.raises(FederationRefused) as caught:
        sign_in(connector or connector_for(provider), **sign_in_options)
    return caught.value


# -- the happy path ------------------------------------------------------------------------------

def test_sign_in_answers_the_subject_and_the_profile_from_userinfo(provider):
    """The identity key is `sub` (Core 2); with response_type=code the scope claims come from UserInfo (Core 5.4)."""
    identity = sign_in(connector_for(provider))
    assert (identity.upstream_id, identity.subject, identity.email, identity.name, identity.given_name,
            identity.family_name) == ("up-1", "user-ada", "ada@example.org", "Ada Lovelace", "Ada", "Lovelace")


def test_authorization_request_carries_pkce_s256_nonce_scope_redirect_uri_and_login_hint(provider):
    """Core 3.1.2.1 and RFC 7636 4.3: code flow, S256 challenge of the saved verifier, the saved nonce, no response_mode."""
    start = connector_for(provider).begin("the-state", login_hint="ada@example.org")
    query = dict(parse_qsl(urlsplit(start.url).query))
    assert query == {"response_type": "code", "client_id": "rp-client", "state": "the-state",
                     "redirect_uri": "http://idp.test/api/v1/auth/external/corp/callback",
                     "scope": "openid email profile", "nonce": start.saved["nonce"],
                     "code_challenge": create_s256_code_challenge(start.saved["code_verifier"]),
                     "code_challenge_method": "S256", "login_hint": "ada@example.org"}


def test_configured_scopes_always_include_openid(provider):
    """Core 3.1.2.1: scope MUST contain openid, whatever the upstream's scopes say."""
    start = connector_for(provider, scopes=("email", "groups")).begin("s")
    assert dict(parse_qsl(urlsplit(start.url).query))["scope"] == "openid email groups"


def test_each_sign_in_gets_its_own_nonce_and_verifier(provider):
    """RFC 7636 4.1 and Core 3.1.2.1: the verifier and nonce are fresh random values per request."""
    connector = connector_for(provider)
    first, second = connector.begin("a").saved, connector.begin("b").saved
    assert first["nonce"] != second["nonce"] and first["code_verifier"] != second["code_verifier"]


def test_code_is_redeemed_with_client_secret_basic_the_verifier_and_the_redirect_uri(provider):
    """RFC 6749 4.1.3 and 2.3.1, RFC 7636 4.5: what the token request carries."""
    connector = connector_for(provider)
    saved = {}
    sign_in(connector, tamper=lambda params, kept: saved.update(kept))
    request = provider.token_requests[0]
    assert (request["auth_method"], request["code_verifier"], request["redirect_uri"]) == (
        "client_secret_basic", saved["code_verifier"], "http://idp.test/api/v1/auth/external/corp/callback")


def test_client_secret_post_when_the_provider_takes_only_that(provider):
    """Discovery 1.0 section 3: token_endpoint_auth_methods_supported without client_secret_basic."""
    provider.metadata = {"token_endpoint_auth_methods_supported": ["client_secret_post"]}
    sign_in(connector_for(provider))
    assert provider.token_requests[0]["auth_method"] == "client_secret_post"


def test_form_post_response_is_accepted(provider):
    """OAuth 2.0 Form Post Response Mode: the same parameters, posted to the callback."""
    identity = sign_in(connector_for(provider), response_mode="form_post")
    assert identity.subject == "user-ada"


def test_id_token_claims_win_over_userinfo(provider):
    """Core 5.3.2: UserInfo is unsigned here; the signed ID token's claims are kept when both carry one."""
    provider.id_token_claims = {"name": "Signed Name"}
    provider.userinfo_claims = {"name": "Userinfo Name"}
    assert sign_in(connector_for(provider)).name == "Signed Name"


def test_groups_come_from_the_groups_claim(provider):
    """Issue 10: an organization's role mapping reads the upstream's groups claim."""
    provider.userinfo_claims = {"groups": ["idp-admins", 7, "staff"]}
    assert sign_in(connector_for(provider)).groups == ("idp-admins", "staff")


def test_a_picture_that_is_not_https_is_dropped(provider):
    """Issue 10 (profile refresh): a javascript: or plain-http picture never reaches the account page."""
    provider.userinfo_claims = {"picture": "javascript:alert(1)"}
    assert sign_in(connector_for(provider)).picture is None


# -- whose e-mail is trusted ---------------------------------------------------------------------

def test_platform_upstream_email_is_not_trusted_by_default(provider):
    """Issue 10: any OpenID provider can claim any address verified; platform-wide ones are not believed."""
    assert sign_in(connector_for(provider)).email_verified is False


def test_platform_upstream_email_is_trusted_when_the_admin_says_so(provider):
    """Issue 10: a platform admin may trust an upstream's email_verified (trust_email_verified)."""
    assert sign_in(connector_for(provider, settings={"trust_email_verified": True})).email_verified is True


def test_organization_upstream_is_trusted_for_its_own_domains(provider):
    """Issue 10: OIDC upstreams of an organization are trusted for that organization's domains."""
    connector = connector_for(provider, organization_id="org-1", email_domains=("example.org",))
    assert sign_in(connector).email_verified is True


def test_organization_upstream_is_not_trusted_for_other_domains(provider):
    """Issue 10: an organization's upstream vouching for someone else's domain would take over its accounts."""
    connector = connector_for(provider, organization_id="org-1", email_domains=("corp.example",),
                              settings={"trust_email_verified": True})
    assert sign_in(connector).email_verified is False


def test_organization_upstream_needs_the_email_verified_claim(provider):
    """Core 5.1: email_verified false means the provider itself does not vouch for the address."""
    provider.userinfo_claims = {"email_verified": False}
    connector = connector_for(provider, organization_id="org-1", email_domains=("example.org",))
    assert sign_in(connector).email_verified is False


# -- the authorization response ------------------------------------------------------------------

def test_error_response_is_refused_with_the_upstream_error_code(provider):
    """RFC 6749 4.1.2.1: an error response carries no code; the provider's error goes to the log."""
    provider.error = "access_denied"
    error = refusal(provider)
    assert (error.reason, error.detail.split()[0], provider.hits["token"]) == ("upstream_error", "error=access_denied", 0)


def test_iss_parameter_of_another_provider_is_refused_before_the_code_is_redeemed(provider):
    """RFC 9207 2.4 (mix-up): an iss that is not this provider's ends the flow; the code goes nowhere."""
    provider.iss_parameter = "https://attacker.example"
    error = refusal(provider)
    assert (error.reason, provider.hits["token"]) == ("iss_mismatch", 0)


def test_missing_iss_parameter_is_refused_when_the_provider_sends_one(provider):
    """RFC 9207 2.4: authorization_response_iss_parameter_supported true and no iss is a mix-up."""
    provider.iss_parameter = None
    error = refusal(provider)
    assert (error.reason, provider.hits["token"]) == ("iss_mismatch", 0)


def test_missing_iss_parameter_is_accepted_when_the_provider_does_not_send_one(provider):
    """RFC 9207 2.4: without the metadata flag the parameter is checked only when present."""
    provider.iss_parameter = None
    provider.metadata = {"authorization_response_iss_parameter_supported": None}
    assert sign_in(connector_for(provider)).subject == "user-ada"


def test_response_without_code_is_refused(provider):
    """RFC 6749 4.1.2: a successful authorization response carries code."""
    error = refusal(provider, tamper=lambda params, saved: params.pop("code"))
    assert error.reason == "code_missing"


def test_response_without_the_saved_sign_in_is_refused(provider):
    """Core 3.1.2.1: an OIDC response is only ever the answer to a request this IdP made (no nonce, no PKCE otherwise)."""
    connector = connector_for(provider)
    params = follow_authorize(connector.begin("s").url)
    with pytest.raises(FederationRefused) as caught:
        connector.complete(params, None)
    assert caught.value.reason == "unsolicited"


def test_wrong_code_verifier_fails_the_token_request(provider):
    """RFC 7636 4.6: the code is bound to this sign-in's verifier; another one gets no tokens."""
    error = refusal(provider, tamper=lambda params, saved: saved.update(code_verifier="x" * 64))
    assert error.reason == "token_error"


def test_token_endpoint_error_is_refused(provider):
    """RFC 6749 5.2: an error response from the token endpoint."""
    provider.token_error = "invalid_grant"
    error = refusal(provider)
    assert (error.reason, error.detail) == ("token_error", "token endpoint answered HTTP 400, error='invalid_grant'")


def test_unreachable_provider_is_refused(provider):
    """Issue 10: a provider that cannot be asked is a refusal page, never a 5xx."""
    connector = connector_for(provider)
    start = connector.begin("s")
    params = follow_authorize(start.url)
    provider.stop()
    clear_cache()
    with pytest.raises(FederationRefused) as caught:
        connector.complete(params, start.saved)
    assert caught.value.reason == "upstream_unreachable"


def test_upstream_without_its_client_secret_is_refused(provider):
    """Issue 10: an upstream whose secret cannot be read signs no one in (a refusal page, never a 5xx)."""
    upstream = UpstreamConfig(id="up-1", slug="corp", kind="oidc", display_name="Corp",
                              settings={"issuer": provider.issuer, "client_id": "c"}, secrets={})
    with pytest.raises(FederationRefused) as caught:
        oidc.KIND.open(upstream, upstream_urls("corp"), HTTP)
    assert caught.value.reason == "upstream_misconfigured"


def test_discovery_naming_another_issuer_is_refused_at_sign_in(provider):
    """Discovery 1.0 section 4.3: the discovered issuer must be exactly the configured one."""
    provider.metadata = {"issuer": "https://attacker.example"}
    with pytest.raises(FederationRefused) as caught:
        connector_for(provider).begin("s")
    assert caught.value.reason == "discovery_invalid"


# -- the ID token --------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["none", "HS256", "RS512"])
def test_id_token_algorithm_the_provider_does_not_advertise_is_refused(provider, alg):
    """RFC 8725 3.1 and Core 3.1.3.7 step 7: never none, never HMAC with our secret, only advertised algorithms."""
    provider.id_token_alg = alg
    assert refusal(provider).reason == "alg_not_allowed"


def test_none_is_refused_even_when_the_provider_advertises_it(provider):
    """RFC 8725 3.1 (CVE-2015-9235): an unsigned ID token is never accepted."""
    provider.metadata = {"id_token_signing_alg_values_supported": ["none", "RS256"]}
    provider.id_token_alg = "none"
    assert refusal(provider).reason == "alg_not_allowed"


def test_rs256_is_assumed_when_the_provider_advertises_no_algorithm(provider):
    """Discovery 1.0 section 3: RS256 is the default of id_token_signing_alg_values_supported."""
    provider.metadata = {"id_token_signing_alg_values_supported": None}
    assert sign_in(connector_for(provider)).subject == "user-ada"


def test_forged_id_token_payload_is_refused(provider):
    """Core 3.1.3.7 step 6: the signature must verify with the provider's key."""
    provider.forge_claims = {"sub": "someone-else"}
    assert refusal(provider).reason == "signature_invalid"


def test_id_token_signed_with_a_key_the_provider_never_published_is_refused(provider):
    """Core 10.1.1: only keys from the provider's jwks_uri verify its tokens."""
    provider.sign_with_unpublished_key = True
    assert refusal(provider).reason == "signature_invalid"


def test_id_token_of_another_issuer_is_refused(provider):
    """Core 3.1.3.7 step 2: iss must exactly match the provider's issuer."""
    provider.id_token_claims = {"iss": provider.issuer + "/"}
    assert refusal(provider).reason == "iss_mismatch"


def test_id_token_for_another_client_is_refused(provider):
    """Core 3.1.3.7 step 3: aud must contain our client_id."""
    provider.id_token_claims = {"aud": "another-client"}
    assert refusal(provider).reason == "aud_mismatch"


def test_id_token_with_several_audiences_and_no_azp_is_refused(provider):
    """Core 3.1.3.7 step 4: with several audiences, azp is required."""
    provider.id_token_claims = {"aud": ["rp-client", "another-client"]}
    assert refusal(provider).reason == "azp_mismatch"


def test_id_token_with_several_audiences_and_our_azp_is_accepted(provider):
    """Core 3.1.3.7 steps 4-5: azp equal to our client_id authorizes a multi-audience token."""
    provider.id_token_claims = {"aud": ["rp-client", "another-client"], "azp": "rp-client"}
    assert sign_in(connector_for(provider)).subject == "user-ada"


def test_id_token_authorized_for_another_party_is_refused(provider):
    """Core 3.1.3.7 step 5: azp, when present, must be our client_id."""
    provider.id_token_claims = {"azp": "another-client"}
    assert refusal(provider).reason == "azp_mismatch"


def test_expired_id_token_is_refused(provider):
    """Core 3.1.3.7 step 9: exp must be in the future (60 s skew)."""
    provider.id_token_claims = {"exp": 1_000_000_000}
    assert refusal(provider).reason == "expired"


def test_id_token_issued_in_the_future_is_refused(provider):
    """Core 3.1.3.7 step 10: iat far in the future means the clocks or the token are wrong."""
    provider.id_token_claims = {"iat": 4_000_000_000, "exp": 4_000_000_300}
    assert refusal(provider).reason == "iat_invalid"


@pytest.mark.parametrize("nonce", ["another-nonce", None])
def test_id_token_without_this_sign_in_nonce_is_refused(provider, nonce):
    """Core 3.1.3.7 step 11 (replay of an ID token from another sign-in): nonce must equal the one sent."""
    provider.id_token_claims = {"nonce": nonce}
    assert refusal(provider).reason == "nonce_mismatch"


def test_userinfo_about_another_subject_is_refused(provider):
    """Core 5.3.2: the UserInfo sub must equal the ID token's (token substitution)."""
    provider.userinfo_claims = {"sub": "someone-else"}
    assert refusal(provider).reason == "userinfo_sub_mismatch"


# -- validate ------------------------------------------------------------------------------------

def test_validate_answers_the_settings_and_secrets_as_stored(provider):
    """Discovery 1.0 section 4.3: the discovered issuer equals the configured one, so the settings are saved."""
    settings = {"issuer": provider.issuer, "client_id": "rp-client", "trust_email_verified": False}
    assert oidc.KIND.validate(settings, {"client_secret": "s3cret"}, HTTP) == (
        {"issuer": provider.issuer, "client_id": "rp-client"}, {"client_secret": "s3cret"})


def test_validate_refuses_an_issuer_whose_discovery_names_another(provider):
    """Discovery 1.0 section 4.3: the issuer in the document MUST exactly match the one used to fetch it."""
    provider.metadata = {"issuer": "https://other.example"}
    with pytest.raises(UpstreamSettingsInvalid) as caught:
        oidc.KIND.validate({"issuer": provider.issuer, "client_id": "c"}, {"client_secret": "s"}, HTTP)
    url = f"{provider.issuer}/.well-known/openid-configuration"
    assert caught.value.errors == {"issuer": f"the discovery document at {url} names the issuer "
                                             f"'https://other.example', not {provider.issuer!r}"}


def test_validate_refuses_an_unreachable_discovery(provider):
    """Issue 10: saving checks the discovery document is reachable."""
    issuer = provider.issuer
    provider.stop()
    with pytest.raises(UpstreamSettingsInvalid) as caught:
        oidc.KIND.validate({"issuer": issuer, "client_id": "c"}, {"client_secret": "s"}, HTTP)
    assert caught.value.errors["issuer"].startswith(
        f"the provider's discovery at {issuer}/.well-known/openid-configuration is not usable: GET ")


def test_validate_refuses_a_discovery_that_answers_404(provider):
    """Discovery 1.0 section 4.2: the configuration is a 200 response with a JSON object."""
    with pytest.raises(UpstreamSettingsInvalid) as caught:
        oidc.KIND.validate({"issuer": provider.base + "/nothing", "client_id": "c"}, {"client_secret": "s"}, HTTP)
    assert caught.value.errors["issuer"].endswith("answered HTTP 404 with an unreadable body")


def test_validate_names_every_missing_and_malformed_field():
    """Issue 10: a validation error that says what is wrong, for every field at once."""
    with pytest.raises(UpstreamSettingsInvalid) as caught:
        oidc.KIND.validate({"issuer": "https://op.example/?tenant=1", "colour": "red", "trust_email_verified": "yes"},
                           {}, HTTP)
    assert caught.value.errors == {"colour": "is not a setting of this kind of upstream",
                                   "issuer": "must not have a query or fragment",
                                   "trust_email_verified": "must be true or false",
                                   "client_id": "is required", "client_secret": "is required"}


def test_validate_refuses_plain_http_in_production():
    """Issue 10: in production every upstream URL must be https."""
    with pytest.raises(UpstreamSettingsInvalid) as caught:
        oidc.KIND.validate({"issuer": "http://op.example", "client_id": "c"}, {"client_secret": "s"}, PRODUCTION_HTTP)
    assert caught.value.errors == {"issuer": "is not allowed: issuer scheme 'http' is not allowed"}


def test_validate_refuses_a_loopback_issuer_in_production():
    """Issue 10 (SSRF, the jwks_uri guard reused): in production an upstream must resolve to public addresses."""
    with pytest.raises(UpstreamSettingsInvalid) as caught:
        oidc.KIND.validate({"issuer": "https://127.0.0.1:8443", "client_id": "c"}, {"client_secret": "s"},
                           PRODUCTION_HTTP)
    assert caught.value.errors == {"issuer": "is not allowed: issuer resolves to a non-public address 127.0.0.1"}


def test_validate_refuses_discovery_endpoints_the_guard_refuses(provider):
    """Issue 10 (SSRF): a token_endpoint inside the network is refused when saving, not only when used."""
    provider.metadata = {"token_endpoint": "file:///etc/passwd"}
    with pytest.raises(UpstreamSettingsInvalid) as caught:
        oidc.KIND.validate({"issuer": provider.issuer, "client_id": "c"}, {"client_secret": "s"}, HTTP)
    assert caught.value.errors["issuer"].endswith("the discovery document's token_endpoint scheme 'file' is not allowed")


def test_kind_describes_its_button_and_secrets():
    """Registry contract: the generic kind's label names the upstream; its secret is write-only."""
    assert (oidc.KIND.label.format(display_name="Corp SSO"), oidc.KIND.icon, oidc.KIND.SECRET_FIELDS) == (
        "Continue with Corp SSO", "openid.svg", ("client_secret",))


def test_standin_refuses_a_redirect_uri_it_does_not_know(provider):
    """RFC 6749 4.1.2.1: the stand-in, like a real provider, never redirects to an unregistered URI."""
    provider.redirect_uris = ["http://idp.test/elsewhere"]
    start = connector_for(provider).begin("s")
    assert requests.get(start.url, allow_redirects=False, timeout=5).status_code == 400
