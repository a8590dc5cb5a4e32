"""The Google preset against a Google-shaped stand-in provider over loopback."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from idp.federation import google
from idp.federation.connector import FederationRefused, UpstreamConfig, UpstreamSettingsInvalid
from idp.federation.http import UpstreamHttp
from tests.federation.standins.oidc_provider import default_user, running, sign_in, upstream_urls

HTTP = UpstreamHttp(allow_private=True, timeout=5)
WORKSPACE_USER = {**default_user("google"), "email": "ada@corp.example", "hd": "corp.example"}


@pytest.fixture
def provider():
    yield from running("google")


def connector_for(provider, **config):
    upstream = UpstreamConfig(id="up-g", slug="google", kind="google", display_name="Google",
                              settings={"issuer": provider.issuer, "client_id": provider.client_id},
                              secrets={"client_secret": provider.client_secret}, **config)
    return google.KIND.open(upstream, upstream_urls("google"), HTTP)


def test_gmail_sign_in_answers_a_verified_address_and_the_profile(provider):
    """Google's ID token: sub is the key, email_verified true for a Gmail address is authoritative."""
    identity = sign_in(connector_for(provider))
    assert (identity.subject, identity.email, identity.email_verified, identity.name, identity.picture) == (
        "110169484474386276334", "ada@gmail.com", True, "Ada Lovelace", "https://lh3.googleusercontent.com/a/ada")


def test_workspace_address_with_hd_is_verified(provider):
    """Google, "Using email, email_verified and hd": email_verified with hd set is a Workspace account Google is authoritative for."""
    provider.set_user(WORKSPACE_USER)
    assert sign_in(connector_for(provider)).email_verified is True


def test_other_providers_address_without_hd_is_not_verified(provider):
    """Google, "Using email, email_verified and hd": for a non-Gmail address without hd Google is not authoritative."""
    provider.set_user({**default_user("google"), "email": "ada@outlook.example"})
    assert sign_in(connector_for(provider)).email_verified is False


def test_email_verified_false_is_not_verified(provider):
    """Issue 10: Google's email_verified is what decides; false is never trusted."""
    provider.set_user({**default_user("google"), "email_verified": False})
    assert sign_in(connector_for(provider)).email_verified is False


def test_email_verified_as_a_string_is_not_verified(provider):
    """Core 5.1: email_verified is a JSON boolean; the string "true" is not the provider vouching."""
    provider.set_user({**default_user("google"), "email_verified": "true"})
    assert sign_in(connector_for(provider)).email_verified is False


def test_upstream_for_a_domain_accepts_that_workspace(provider):
    """Google, hd claim: an upstream for corp.example takes tokens with hd corp.example."""
    provider.set_user(WORKSPACE_USER)
    assert sign_in(connector_for(provider, email_domains=("corp.example",))).subject == "110169484474386276334"


@pytest.mark.parametrize("hd", ["other.example", None])
def test_upstream_for_a_domain_refuses_other_accounts(provider, hd):
    """Google, hd parameter: "validate that the returned ID token has an hd claim value that matches"; the request parameter is only a hint."""
    provider.set_user({**WORKSPACE_USER, "hd": hd} if hd else default_user("google"))
    with pytest.raises(FederationRefused) as caught:
        sign_in(connector_for(provider, email_domains=("corp.example",)))
    assert caught.value.reason == "hd_mismatch"


def test_upstream_for_one_domain_sends_the_hd_hint(provider):
    """Google's authentication URI parameters: hd optimizes the account chooser for that domain."""
    start = connector_for(provider, email_domains=("corp.example",)).begin("s")
    assert dict(parse_qsl(urlsplit(start.url).query))["hd"] == "corp.example"


def test_google_sends_no_iss_parameter_and_is_accepted(provider):
    """RFC 9207 2.4: Google's discovery does not advertise the iss parameter, so its absence is fine."""
    assert provider.metadata == {} and sign_in(connector_for(provider)).subject == "110169484474386276334"


def test_id_token_with_another_azp_is_refused(provider):
    """Core 3.1.3.7 step 5: Google sets azp; another client's azp is refused."""
    provider.id_token_claims = {"azp": "another-client.apps.googleusercontent.com"}
    with pytest.raises(FederationRefused) as caught:
        sign_in(connector_for(provider))
    assert caught.value.reason == "azp_mismatch"


def test_the_issuer_defaults_to_accounts_google_com():
    """Issue 10: google's issuer defaults to https://accounts.google.com."""
    errors = {}
    assert google.KIND.check_fields({"client_id": "c"}, HTTP, errors) == {"issuer": "https://accounts.google.com"}
    assert errors == {}


def test_validate_with_the_standin_issuer(provider):
    """Discovery 1.0 section 4.3: GOOGLE_ISSUER pointing at a stand-in is checked like any issuer."""
    assert google.KIND.validate({"issuer": provider.issuer, "client_id": "c"}, {"client_secret": "s"}, HTTP) == (
        {"issuer": provider.issuer, "client_id": "c"}, {"client_secret": "s"})


def test_validate_refuses_settings_google_does_not_have():
    """Issue 10: trust in Google's e-mail is Google's own rule, not a setting."""
    with pytest.raises(UpstreamSettingsInvalid) as caught:
        google.KIND.validate({"client_id": "c", "trust_email_verified": True}, {"client_secret": "s"}, HTTP)
    assert caught.value.errors == {"trust_email_verified": "is not a setting of this kind of upstream"}


def test_kind_describes_its_button():
    """Issue 10: the provider's usual wording and a local mark."""
    assert (google.KIND.label, google.KIND.icon, google.KIND.SECRET_FIELDS) == (
        "Continue with Google", "google.svg", ("client_secret",))
