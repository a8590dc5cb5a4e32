"""The sign-in page's upstream buttons and home-realm discovery (idp.web.upstreams, idp.web.sign_in)."""
from __future__ import annotations

from urllib.parse import urlencode


from idp.services.seed import DEMO_CLIENT
from tests.web.helpers import submit

CALLBACK = DEMO_CLIENT["redirect_uris"][0]


def _pending_request(client, **extra) -> str:
    """Start an authorization request for the demo client; the id of the pending request it stored."""
    params = {"client_id": DEMO_CLIENT["client_id"], "response_type": "code", "redirect_uri": CALLBACK,
              "scope": "openid email", "state": "st", "nonce": "n", **extra}
    location = client.get("/oauth2/authorize?" + urlencode(params)).headers["Location"]
    assert location.startswith("/login?request=")
    return location.split("=", 1)[1]


def test_enabled_platform_upstreams_appear_as_buttons_with_their_marks(client, factories):
    """Each enabled platform upstream is a "Continue with" link to its login endpoint, with a local icon."""
    factories.upstream(slug="google", kind="google", display_name="Google")
    factories.upstream(slug="old-github", kind="github", display_name="Old GitHub", enabled=False)
    org = factories.organization()
    factories.upstream(slug="acme-sso", kind="saml", display_name="Acme SSO", organization_id=org.id)
    html = client.get("/login").get_data(as_text=True)
    assert 'href="/api/v1/auth/external/google/login"' in html and "Continue with Google" in html
    assert 'src="/static/upstreams/google.svg"' in html
    assert "Old GitHub" not in html and "Acme SSO" not in html
    assert client.get("/static/upstreams/google.svg").status_code == 200


def test_no_upstreams_means_no_buttons(client):
    """With no upstream configured the page shows no federation section."""
    assert "Continue with" not in client.get("/login").get_data(as_text=True)


def test_upstream_buttons_carry_the_pending_request_id(client, factories, demo_data):
    """During an authorization request each upstream link carries ?request=<id> to resume it."""
    factories.upstream(slug="github", kind="github", display_name="GitHub")
    request_id = _pending_request(client)
    html = client.get(f"/login?request={request_id}").get_data(as_text=True)
    assert f'href="/api/v1/auth/external/github/login?request={request_id}"' in html


def test_an_address_of_an_upstreams_domain_goes_straight_to_it(client, factories):
    """Home-realm discovery: typing an address of the upstream's domain (no password) starts its sign-in."""
    factories.upstream(slug="acme-sso", kind="saml", email_domains=["acme-corp.com"])
    response = submit(client, "/login", {"email": "carol@acme-corp.com", "password": ""})
    assert response.status_code == 302
    assert response.headers["Location"] == "/api/v1/auth/external/acme-sso/login"


def test_an_address_of_another_domain_still_needs_a_password(client, factories):
    """An address no upstream claims, without a password, is a form error (422), not a redirect."""
    factories.upstream(slug="acme-sso", kind="saml", email_domains=["acme-corp.com"])
    response = submit(client, "/login", {"email": "dave@example.org", "password": ""})
    assert response.status_code == 422 and "Enter your password." in response.get_data(as_text=True)


def test_an_enforcing_upstream_takes_its_addresses_even_with_a_password(client, factories):
    """An upstream enforced for its domains: a password typed for such an address is not checked here."""
    factories.upstream(slug="acme-sso", kind="saml", email_domains=["acme-corp.com"], enforce_for_domains=True)
    factories.user(email="carol@acme-corp.com")
    response = submit(client, "/login", {"email": "carol@acme-corp.com", "password": "Correct-Horse-42"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/api/v1/auth/external/acme-sso/login"
    assert client.get_cookie("authy2_session") is None


def test_idp_hint_on_the_authorization_request_goes_to_that_upstream(client, factories, demo_data):
    """`idp_hint=<slug>` sends the sign-in straight to that upstream, resuming the request after."""
    factories.upstream(slug="github", kind="github", display_name="GitHub")
    request_id = _pending_request(client, idp_hint="github")
    response = client.get(f"/login?request={request_id}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/api/v1/auth/external/github/login?request={request_id}"


def test_login_hint_of_an_upstreams_domain_goes_to_that_upstream(client, factories, demo_data):
    """A `login_hint` address of an upstream's domain is home-realm discovery too (OIDC Core 3.1.2.1)."""
    factories.upstream(slug="acme-sso", kind="saml", email_domains=["acme-corp.com"])
    request_id = _pending_request(client, login_hint="carol@acme-corp.com")
    response = client.get(f"/login?request={request_id}")
    assert response.headers["Location"] == f"/api/v1/auth/external/acme-sso/login?request={request_id}"


def test_api_password_login_for_an_enforced_domain_is_refused(client, factories):
    """The API's password login for an SSO-enforced address answers 403 SSO_REQUIRED, naming the upstream."""
    factories.upstream(slug="acme-sso", kind="saml", display_name="Acme SSO", email_domains=["acme-corp.com"],
                       enforce_for_domains=True)
    factories.user(email="carol@acme-corp.com")
    response = client.post("/api/v1/auth/login", json={"email": "carol@acme-corp.com", "password": "Correct-Horse-42"})
    body = response.get_json()
    assert response.status_code == 403 and body["error"]["type"] == "SSO_REQUIRED"
    assert "Acme SSO" in body["message"]
