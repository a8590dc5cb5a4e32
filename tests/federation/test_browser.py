"""Federated sign-in end to end in headless Chromium: the sign-in page, the upstream stand-ins and the
federation endpoints over real HTTP on loopback, as a person uses them."""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.sync_api import expect
from sqlalchemy import select

from idp.extensions import db
from idp.federation.oidc_metadata import clear_cache
from idp.federation.validation import validate_settings
from idp.models import Membership, Organization, Session, User
from idp.services import upstream_admin
from idp.services.seed import DEMO_CLIENT, DEMO_ORG, seed_demo_data
from tests.federation.standins.oidc_provider import OidcProvider
from tests.federation.standins.saml_idp import SamlIdp
from tests.servers import LiveServer

pytestmark = pytest.mark.browser

CALLBACK = DEMO_CLIENT["redirect_uris"][0]
EXTERNAL = "/api/v1/auth/external"
MAIL_OID, NAME_OID = "urn:oid:0.9.2342.19200300.100.1.3", "urn:oid:2.16.840.1.113730.3.1.241"


@pytest.fixture
def server(make_app):
    """Authy2 on a loopback port with the seed's demo data; ISSUER is that port's URL, so the redirect
    URI and SAML ACS it hands upstreams are the ones the browser can reach."""
    live = LiveServer(make_app())
    live.app.config["ISSUER"] = live.url
    with live.app.app_context():
        seed_demo_data()
        db.session.commit()
    live.start()
    yield live
    live.stop()


@pytest.fixture
def google(server):
    """A Google-shaped stand-in OP on 127.0.0.1 and the platform upstream "google" created through the
    management service with the same validation the API applies (discovery fetched, issuer compared)."""
    clear_cache()
    provider = OidcProvider("google").start()
    create_upstream(server, {"slug": "google", "kind": "google", "display_name": "Google", "issuer": provider.issuer,
                             "client_id": provider.client_id, "client_secret": provider.client_secret})
    yield provider
    provider.stop()


@pytest.fixture
def saml_idp():
    idp = SamlIdp()
    idp.start()
    yield idp
    idp.stop()


@pytest.fixture
def callbacks(page):
    """URLs of the browser's requests to the demo RP's callback (nothing serves localhost:3000)."""
    seen: list[str] = []
    page.on("request", lambda req: seen.append(req.url) if req.url.startswith(CALLBACK) else None)
    return seen


def create_upstream(server, data: dict):
    with server.app.app_context():
        upstream_admin.create_upstream(None, data, validate_settings)
        db.session.commit()


def authorize_url(server) -> str:
    params = {"client_id": DEMO_CLIENT["client_id"], "response_type": "code", "redirect_uri": CALLBACK,
              "scope": "openid profile email", "state": "fed-state", "nonce": "fed-nonce"}
    return f"{server.url}/oauth2/authorize?{urlencode(params)}"


def redeem(server, code: str) -> dict:
    """The RP's back-channel token request (RFC 6749 4.1.3), client_secret_basic."""
    response = requests.post(f"{server.url}/oauth2/token", timeout=10,
                             auth=(DEMO_CLIENT["client_id"], DEMO_CLIENT["client_secret"]),
                             data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK})
    assert response.status_code == 200, response.text
    return response.json()


def test_acme_portal_code_flow_through_continue_with_google(page, server, google, callbacks):
    """OIDC Core 3.1.2 with an upstream in the middle: acme-portal's authorization request, "Continue with
    Google" on the sign-in page, the Google-shaped stand-in, consent, then the RP's redirect URI with a code
    whose ID token says amr ["fed"] and idp "google"."""
    page.goto(authorize_url(server))
    expect(page.get_by_text("to continue to Acme Portal")).to_be_visible()
    page.get_by_role("link", name="Continue with Google").click()
    page.wait_for_url("**/consent/**")
    assert google.hits["authorize"] == 1 and google.hits["token"] == 1
    with page.expect_request(lambda r: r.url.startswith(CALLBACK)):
        page.get_by_role("button", name="Allow").click()
    assert callbacks, "the browser never reached the RP callback"
    query = {k: v[0] for k, v in parse_qs(urlsplit(callbacks[-1]).query).items()}
    assert query["state"] == "fed-state" and query["iss"] == server.url
    tokens = redeem(server, query["code"])
    keys = KeySet.import_key_set(requests.get(f"{server.url}/oauth2/jwks", timeout=10).json())
    claims = jwt.decode(tokens["id_token"], keys).claims
    assert (claims["amr"], claims["idp"]) == (["fed"], "google")
    assert (claims["iss"], claims["aud"], claims["nonce"]) == (server.url, DEMO_CLIENT["client_id"], "fed-nonce")
    assert claims["email"] == "ada@gmail.com" and claims["email_verified"] is True


def test_saml_sign_in_by_typing_an_address_of_the_upstreams_domain(page, server, saml_idp):
    """Home-realm discovery to SAML Web Browser SSO (SAML 2.0 Profiles 4.1): an address of the Acme
    organization's domain typed on the sign-in page goes to its SAML IdP, whose auto-submitted Response at
    our ACS signs a new member in on the account page."""
    with server.app.app_context():
        acme_id = db.session.scalars(select(Organization.id).where(Organization.slug == DEMO_ORG["slug"])).one()
    create_upstream(server, {"slug": "acme-sso", "kind": "saml", "display_name": "Acme SSO", "organization_id": acme_id,
                             "email_domains": ["acme-corp.com"], "metadata_url": saml_idp.metadata_url})
    saml_idp.trust_sp(requests.get(f"{server.url}{EXTERNAL}/acme-sso/metadata", timeout=10).text)
    saml_idp.user = {"name_id": "acme-carol-7", "attributes": {MAIL_OID: "carol@acme-corp.com",
                                                                NAME_OID: "Carol Danvers"}}
    page.goto(f"{server.url}/login")
    expect(page.get_by_role("link", name="Continue with Acme SSO")).to_have_count(0)
    page.get_by_label("Email address").fill("carol@acme-corp.com")
    with page.expect_request(lambda r: r.method == "POST" and r.url == f"{server.url}{EXTERNAL}/acme-sso/acs"):
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/account")
    expect(page.get_by_text("Signed in as carol@acme-corp.com")).to_be_visible()
    expect(page.locator("#sign-in-methods")).to_contain_text("Acme SSO")
    assert [request["issuer"] for request in saml_idp.authn_requests] == [f"{server.url}{EXTERNAL}/acme-sso/metadata"]
    with server.app.app_context():
        carol = db.session.scalars(select(User).where(User.email == "carol@acme-corp.com")).one()
        membership = db.session.scalars(select(Membership).where(Membership.user_id == carol.id)).one()
        session = db.session.scalars(select(Session).where(Session.user_id == carol.id)).one()
        assert (carol.email_verified, carol.name, carol.password_hash) == (True, "Carol Danvers", None)
        assert (membership.organization_id, membership.role) == (acme_id, "member")
        assert (session.amr, session.idp) == (["fed"], "acme-sso")
