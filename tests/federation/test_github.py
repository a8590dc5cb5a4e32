"""The github connector against the GitHub-shaped stand-in (OAuth web application flow + REST API)."""
from __future__ import annotations

import base64
import hashlib
import socket
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import time_machine

from idp.federation.connector import FederationRefused, UpstreamConfig, UpstreamSettingsInvalid, UpstreamUrls
from idp.federation.github import KIND, pkce_pair
from idp.federation.http import UpstreamHttp
from tests.federation.standins.github import GitHubStandIn, callback_params

CALLBACK = "http://idp.test/api/v1/auth/external/github/callback"
URLS = UpstreamUrls(login="http://idp.test/api/v1/auth/external/github/login", callback=CALLBACK,
                    metadata="http://idp.test/api/v1/auth/external/github/metadata",
                    acs="http://idp.test/api/v1/auth/external/github/acs",
                    slo="http://idp.test/api/v1/auth/external/github/slo")
LOOPBACK = UpstreamHttp(allow_private=True, timeout=5)
PRODUCTION = UpstreamHttp(allow_private=False, timeout=5)


@pytest.fixture(scope="module")
def server():
    standin = GitHubStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def github(server):
    """The module's stand-in, knobs back to their defaults, the OAuth app's callback URL registered."""
    server.reset()
    server.callback_url = CALLBACK
    return server


def connect(github: GitHubStandIn, scopes: tuple[str, ...] = ()):
    settings, secrets = KIND.validate(*github.settings(), LOOPBACK)
    config = UpstreamConfig(id="up-github", slug="github", kind="github", display_name="GitHub",
                            settings=settings, secrets=secrets, scopes=scopes)
    return KIND.open(config, URLS, LOOPBACK)


def sign_in(github: GitHubStandIn, scopes: tuple[str, ...] = ()):
    connector = connect(github, scopes)
    start = connector.begin("state-1")
    return connector.complete(callback_params(start.url), start.saved)


def refusal(call) -> str:
    with pytest.raises(FederationRefused) as refused:
        call()
    return refused.value.reason


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


# Identity


def test_subject_is_the_numeric_id_and_a_verified_primary_is_trusted(github):
    """GitHub docs "Get the authenticated user" + "List email addresses": subject = id, primary verified -> trusted."""
    identity = sign_in(github)
    assert (identity.upstream_id, identity.subject, identity.email, identity.email_verified) == \
        ("up-github", "583231", "octocat@example.com", True)
    assert (identity.name, identity.picture) == ("The Octocat", "https://avatars.githubusercontent.com/u/583231?v=4")
    assert identity.claims == {"id": 583231, "login": "octocat"}


def test_subject_survives_a_login_rename_and_a_reused_login_is_someone_else(github):
    """Issue 10: the identity key is GitHub's numeric id, never the login (logins are renamed and re-registered)."""
    first = sign_in(github)
    github.user["login"] = "octocat-renamed"
    renamed = sign_in(github)
    github.user = {**github.user, "id": 9999001, "login": "octocat"}
    squatter = sign_in(github)
    assert (first.subject, renamed.subject, squatter.subject) == ("583231", "583231", "9999001")


def test_name_falls_back_to_the_login(github):
    """GitHub docs: `name` is null for a user who set none; the login is shown instead."""
    github.user["name"] = None
    assert sign_in(github).name == "octocat"


def test_public_email_null_and_an_unverified_primary_are_not_trusted(github):
    """Issue 10 ("GitHub unverified e-mail", nOAuth): /user email null, primary unverified -> not verified."""
    github.emails = [{"email": "new@example.com", "primary": True, "verified": False, "visibility": "private"}]
    identity = sign_in(github)
    assert (identity.email, identity.email_verified) == ("new@example.com", False)


def test_the_public_profile_email_is_never_used(github):
    """Issue 10: /user's `email` is the public profile address, unverified; only /user/emails' primary counts."""
    github.user["email"] = "victim@example.com"
    github.emails = [{"email": "attacker@example.net", "primary": True, "verified": False, "visibility": None},
                     {"email": "victim@example.com", "primary": False, "verified": False, "visibility": None}]
    identity = sign_in(github)
    assert (identity.email, identity.email_verified) == ("attacker@example.net", False)


def test_a_verified_secondary_address_is_not_the_email(github):
    """GitHub docs "List email addresses": the account's address is the `primary` one, not any verified one."""
    github.emails = [{"email": "primary@example.com", "primary": True, "verified": False, "visibility": None},
                     {"email": "other@example.com", "primary": False, "verified": True, "visibility": None}]
    identity = sign_in(github)
    assert (identity.email, identity.email_verified) == ("primary@example.com", False)


def test_emails_forbidden_leaves_no_email(github):
    """GitHub docs: /user/emails needs the user:email scope; a 403 there means no address, not a trusted one."""
    github.emails_forbidden = True
    identity = sign_in(github)
    assert (identity.subject, identity.email, identity.email_verified) == ("583231", None, False)


def test_scopes_without_user_email_leave_no_email(github):
    """GitHub docs "Scopes for OAuth apps": read:user alone cannot list addresses (403), so no e-mail."""
    identity = sign_in(github, scopes=("read:user",))
    assert (identity.email, identity.email_verified) == (None, False)


# The authorization request


def test_begin_sends_github_authorize_parameters_with_pkce_s256(github):
    """GitHub docs web application flow step 1 + PKCE changelog 2025-07-14: S256 challenge of the saved verifier."""
    start = connect(github).begin("state-1", login_hint="octocat@example.com")
    parts = urlsplit(start.url)
    query = dict(parse_qsl(parts.query))
    verifier = start.saved["code_verifier"]
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{github.base_url}/login/oauth/authorize"
    assert query == {"client_id": github.client_id, "redirect_uri": CALLBACK, "scope": "read:user user:email",
                     "state": "state-1", "code_challenge": digest, "code_challenge_method": "S256",
                     "login": "octocat@example.com"}


def test_each_begin_has_a_fresh_verifier_of_rfc7636_length(github):
    """RFC 7636 4.1: a high-entropy verifier of 43-128 characters, new for every authorization request."""
    connector = connect(github)
    first, second = connector.begin("a").saved["code_verifier"], connector.begin("b").saved["code_verifier"]
    assert (len(first), first != second) == (64, True)


def test_token_request_carries_the_verifier_and_api_calls_the_github_headers(github):
    """GitHub docs step 2 (code_verifier, Accept: application/json) and REST "API versions" headers."""
    connector = connect(github)
    start = connector.begin("state-1")
    connector.complete(callback_params(start.url), start.saved)
    token_form = github.token_requests[-1]
    assert (token_form["code_verifier"], token_form["redirect_uri"]) == (start.saved["code_verifier"], CALLBACK)
    assert [path for path, _ in github.api_requests] == ["/user", "/user/emails"]
    headers = github.api_requests[0][1]
    assert (headers["Authorization"].split(" ")[0], headers["Accept"], headers["X-Github-Api-Version"]) == \
        ("Bearer", "application/vnd.github+json", "2022-11-28")


# Refusals


def test_a_wrong_pkce_verifier_is_refused(github):
    """RFC 7636 4.6: the stand-in, like GitHub, refuses a verifier that does not match the challenge."""
    connector = connect(github)
    start = connector.begin("state-1")
    params = callback_params(start.url)
    assert refusal(lambda: connector.complete(params, {"code_verifier": pkce_pair()[0]})) == "token_error"


@pytest.mark.parametrize("error", ["bad_verification_code", "incorrect_client_credentials", "redirect_uri_mismatch"])
def test_a_token_error_answered_with_http_200_is_refused(github, error):
    """Issue 10: "GitHub: errors that come back with HTTP 200 are errors" (GitHub's token-request errors doc)."""
    github.token_error = error
    assert refusal(lambda: sign_in(github)) == "token_error"


def test_a_code_used_twice_is_refused(github):
    """RFC 6749 4.1.2: a code is used once; GitHub answers the second exchange 200 + bad_verification_code."""
    connector = connect(github)
    start = connector.begin("state-1")
    params = callback_params(start.url)
    connector.complete(params, start.saved)
    assert refusal(lambda: connector.complete(params, start.saved)) == "token_error"


def test_an_expired_code_is_refused(github):
    """GitHub docs step 2: codes expire after 10 minutes (answered 200 + bad_verification_code)."""
    connector = connect(github)
    start = connector.begin("state-1")
    params = callback_params(start.url)
    with time_machine.travel(time.time() + 601, tick=False):
        assert refusal(lambda: connector.complete(params, start.saved)) == "token_error"


def test_a_wrong_client_secret_is_refused(github):
    """GitHub docs: bad client credentials answer 200 + incorrect_client_credentials."""
    settings, _ = github.settings()
    config = UpstreamConfig(id="up-github", slug="github", kind="github", display_name="GitHub",
                            settings=settings, secrets={"client_secret": "not-the-secret"})
    connector = KIND.open(config, URLS, LOOPBACK)
    start = connector.begin("state-1")
    assert refusal(lambda: connector.complete(callback_params(start.url), start.saved)) == "token_error"


@pytest.mark.parametrize("status", [200, 404, 500])
def test_an_error_object_from_user_is_refused(github, status):
    """GitHub REST errors are {"message": ...} objects; one from /user is no user, whatever its status."""
    github.user_error = status
    assert refusal(lambda: sign_in(github)) == "api_error"


def test_access_denied_on_the_callback_is_refused_without_a_token_request(github):
    """GitHub docs "Troubleshooting authorization request errors": the user cancelled -> error=access_denied."""
    github.authorize_error = "access_denied"
    assert (refusal(lambda: sign_in(github)), github.token_requests) == ("upstream_error", [])


def test_redirect_uri_mismatch_on_the_callback_is_refused(github):
    """GitHub docs: a redirect_uri outside the registered callback URL comes back as error=redirect_uri_mismatch."""
    github.callback_url = "http://idp.test/elsewhere"
    assert refusal(lambda: sign_in(github)) == "upstream_error"


def test_a_callback_without_a_started_sign_in_is_refused(github):
    """RFC 7636 4.5: without the saved verifier there is nothing to redeem the code with."""
    start = connect(github).begin("state-1")
    assert refusal(lambda: connect(github).complete(callback_params(start.url), None)) == "unsolicited"


def test_an_unreachable_api_is_refused(github):
    """Issue 10 "never a 5xx": a GitHub API that cannot be reached is a refusal."""
    settings, secrets = github.settings()
    config = UpstreamConfig(id="up-github", slug="github", kind="github", display_name="GitHub",
                            settings={**settings, "api_url": closed_port_url()}, secrets=secrets)
    connector = KIND.open(config, URLS, LOOPBACK)
    start = connector.begin("state-1")
    assert refusal(lambda: connector.complete(callback_params(start.url), start.saved)) == "upstream_unreachable"


# Settings


def test_validate_fills_in_github_com_defaults():
    """Issue 10 "Management API": github base_url defaults to https://github.com, api_url to https://api.github.com."""
    assert KIND.validate({"client_id": " abc "}, {"client_secret": "s3cret"}, LOOPBACK) == (
        {"base_url": "https://github.com", "api_url": "https://api.github.com", "client_id": "abc"},
        {"client_secret": "s3cret"})


def test_validate_defaults_the_enterprise_server_api_under_the_base_url():
    """GitHub Enterprise Server docs: the REST API lives at http(s)://HOSTNAME/api/v3."""
    settings, _ = KIND.validate({"base_url": "https://ghe.example.com/", "client_id": "abc"},
                                {"client_secret": "s"}, LOOPBACK)
    assert (settings["base_url"], settings["api_url"]) == ("https://ghe.example.com", "https://ghe.example.com/api/v3")


def test_validate_requires_client_id_and_secret():
    """Issue 10 "Management API": saving answers a validation error that says what is wrong."""
    with pytest.raises(UpstreamSettingsInvalid) as invalid:
        KIND.validate({"client_id": ""}, {}, LOOPBACK)
    assert invalid.value.errors == {"client_id": "is required", "client_secret": "is required"}


def test_validate_refuses_plain_http_in_production():
    """Issue 10: in production every upstream URL must be https (the jwks_uri SSRF guard)."""
    with pytest.raises(UpstreamSettingsInvalid) as invalid:
        KIND.validate({"base_url": "http://ghe.example.com", "client_id": "abc"}, {"client_secret": "s"}, PRODUCTION)
    assert sorted(invalid.value.errors) == ["api_url", "base_url"]
    assert "scheme 'http' is not allowed" in invalid.value.errors["base_url"]


def test_validate_refuses_a_loopback_api_in_production():
    """Issue 10: in production upstream URLs must resolve to public addresses (SSRF guard)."""
    with pytest.raises(UpstreamSettingsInvalid) as invalid:
        KIND.validate({"base_url": "https://127.0.0.1:8443", "api_url": "https://127.0.0.1:8443/api/v3",
                       "client_id": "abc"}, {"client_secret": "s"}, PRODUCTION)
    assert "non-public address 127.0.0.1" in invalid.value.errors["api_url"]


@pytest.mark.parametrize("url, error", [
    ("github.com", "must be an absolute URL"),
    ("https://github.com/?next=x", "must not have a query or fragment"),
    ("https://github.com/#x", "must not have a query or fragment"),
    ("https://user:pw@github.com", "must not carry credentials"),
])
def test_validate_refuses_a_malformed_base_url(url, error):
    """Issue 10 "Management API": a base URL is an absolute origin (and path) without query, fragment or userinfo."""
    with pytest.raises(UpstreamSettingsInvalid) as invalid:
        KIND.validate({"base_url": url, "api_url": "https://api.github.com", "client_id": "a"}, {"client_secret": "s"},
                      LOOPBACK)
    assert invalid.value.errors == {"base_url": error}


def test_validate_refuses_a_setting_of_another_kind():
    """Issue 10 "Management API": a field of another kind (tenant) is an error, not silently ignored."""
    with pytest.raises(UpstreamSettingsInvalid) as invalid:
        KIND.validate({"client_id": "a", "tenant": "common"}, {"client_secret": "s"}, LOOPBACK)
    assert invalid.value.errors == {"tenant": "is not a setting of a GitHub upstream"}


def test_kind_describes_its_button_and_secrets():
    """Issue 10 "Sign-in page": the provider's usual wording and a local SVG mark; client_secret is write-only."""
    assert (KIND.label, KIND.icon, KIND.SECRET_FIELDS) == ("Continue with GitHub", "github.svg", ("client_secret",))
