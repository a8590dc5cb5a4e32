"""SP-initiated SAML Single Logout after our own sign-out (idp.federation.single_logout): RP-initiated
logout and the hosted sign-out of a SAML-federated session send the IdP a signed LogoutRequest, and its
LogoutResponse at /slo continues where our logout would have gone; against the stand-in SAML IdP."""
from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from saml2.pack import http_redirect_message
from saml2.sigver import RSACrypto
from sqlalchemy import select

from idp.extensions import db
from idp.federation.connectors import upstream_http
from idp.federation.saml import KIND
from idp.models import AuditEvent, Session, Upstream
from idp.services import upstreams
from tests.federation.standins.saml_idp import SamlIdp, inflate
from tests.federation.standins.saml_messages import KeyPair
from tests.oidc.conftest import REDIRECT_URI, Flow
from tests.web.helpers import csrf_from

EXTERNAL = "/api/v1/auth/external"
BYE = "https://rp.example/bye"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


@pytest.fixture(scope="module")
def saml_idp():
    idp = SamlIdp()
    idp.start()
    yield idp
    idp.stop()


@pytest.fixture
def corp(app, client, saml_idp):
    """The SAML upstream `corp` (metadata from the stand-in, which names an SLO URL), our SP trusted by it."""
    with app.app_context():
        stored, secrets = KIND.validate({"metadata_url": saml_idp.metadata_url}, {}, upstream_http())
        upstream = Upstream(slug="corp", kind="saml", display_name="Corp", settings=stored)
        upstreams.set_secrets(upstream, secrets)
        db.session.add(upstream)
        db.session.commit()
    saml_idp.trust_sp(client.get(f"{EXTERNAL}/corp/metadata").get_data(as_text=True))
    return "corp"


@pytest.fixture
def flow(app, client, factories):
    rp = factories.client(redirect_uris=[REDIRECT_URI], first_party=True, post_logout_redirect_uris=[BYE])
    return Flow(app, client, rp)


def saml_sign_in(client, saml_idp) -> None:
    """The browser signs in at the stand-in IdP: our AuthnRequest, its signed Response POSTed to our ACS."""
    started = client.get(f"{EXTERNAL}/corp/login")
    _, fields = saml_idp.follow(started.headers["Location"])
    response = client.post(f"{EXTERNAL}/corp/acs", data=fields)
    assert response.status_code == 302, response.get_data(as_text=True)


def upstream_session(app) -> dict:
    with app.app_context():
        return dict(db.session.scalars(select(Session)).one().upstream_session)


def session_status(app) -> str:
    with app.app_context():
        return db.session.scalars(select(Session)).one().status


def rp_logout(client, id_token: str):
    query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": BYE, "state": "s1"})
    return client.get(f"/oauth2/logout?{query}")


def at_the_idp(url: str) -> requests.Response:
    """The browser's trip to the stand-in's SLO endpoint (it verifies our query signature)."""
    return requests.get(url, allow_redirects=False, timeout=5)


def back_to_us(client, location: str):
    parts = urlsplit(location)
    return client.get(f"{parts.path}?{parts.query}")


def signed_logout_response(keys: KeyPair, saml_idp, in_response_to: str, relay_state: str) -> str:
    """A LogoutResponse from the IdP's entity, signed over HTTP-Redirect with `keys`."""
    xml = (f'<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
           f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_forged1" Version="2.0" '
           f'IssueInstant="2030-01-01T00:00:00Z" Destination="{saml_idp.sp["slo"]}" InResponseTo="{in_response_to}">'
           f"<saml:Issuer>{saml_idp.entity_id}</saml:Issuer><samlp:Status><samlp:StatusCode "
           f'Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>')
    key = load_pem_private_key(keys.key_pem.encode(), password=None)
    info = http_redirect_message(xml, saml_idp.sp["slo"], relay_state, "SAMLResponse", sigalg=RSA_SHA256, sign=True,
                                 backend=RSACrypto(key))
    return dict(info["headers"])["Location"]


def test_rp_initiated_logout_sends_a_signed_logout_request_naming_the_session(app, client, corp, saml_idp, flow):
    """SAML Profiles 4.4.3.1 after RPI Logout 2: our session ends first, then the browser carries our signed
    LogoutRequest (the stand-in verifies it with our SP certificate) naming the NameID and SessionIndex."""
    saml_sign_in(client, saml_idp)
    named = upstream_session(app)
    response = rp_logout(client, flow.tokens()["id_token"])
    assert response.status_code == 302 and response.headers["Location"].startswith(saml_idp.slo_url + "?")
    assert session_status(app) == "REVOKED"
    answered = at_the_idp(response.headers["Location"])
    assert (answered.status_code, saml_idp.refusals) == (302, [])
    request = saml_idp.logout_requests[-1]
    assert (request["name_id"], request["session_index"], request["destination"]) == (
        named["name_id"], named["session_index"], saml_idp.slo_url)


def test_the_logout_response_lands_on_the_registered_post_logout_redirect_uri(app, client, corp, saml_idp, flow):
    """RPI Logout 3 after SAML Profiles 4.4.3.4: the IdP's LogoutResponse continues to the RP's registered
    post_logout_redirect_uri with its state."""
    saml_sign_in(client, saml_idp)
    response = rp_logout(client, flow.tokens()["id_token"])
    landed = back_to_us(client, at_the_idp(response.headers["Location"]).headers["Location"])
    assert (landed.status_code, landed.headers["Location"]) == (302, f"{BYE}?state=s1")


def test_relay_state_is_a_random_token_not_the_destination(app, client, corp, saml_idp, flow):
    """Bindings 3.4.3 (RelayState at most 80 bytes) and no open redirect: the continuation stays server-side."""
    saml_sign_in(client, saml_idp)
    location = rp_logout(client, flow.tokens()["id_token"]).headers["Location"]
    relay_state = parse_qs(urlsplit(location).query)["RelayState"][0]
    assert len(relay_state) <= 80 and "rp.example" not in relay_state


@pytest.mark.parametrize("forgery", ["unsigned", "other_key"])
def test_a_forged_logout_response_is_refused_without_redirect(app, client, corp, saml_idp, flow, forgery):
    """Bindings 3.4.4.1: a LogoutResponse without the IdP's query signature (none, or another key's) is an
    HTML 400 that sends the browser nowhere, audited; the RP's URI is never reached through it."""
    saml_sign_in(client, saml_idp)
    location = rp_logout(client, flow.tokens()["id_token"]).headers["Location"]
    query = parse_qs(urlsplit(location).query)
    request_id = re.search(r'ID="([^"]+)"', inflate(query["SAMLRequest"][0]).decode()).group(1)
    forged = signed_logout_response(KeyPair.generate("attacker"), saml_idp, request_id, query["RelayState"][0])
    if forgery == "unsigned":
        forged_query = {k: v[0] for k, v in parse_qs(urlsplit(forged).query).items() if k not in ("Signature",
                                                                                                    "SigAlg")}
        forged = f"{saml_idp.sp['slo']}?{urlencode(forged_query)}"
    response = back_to_us(client, forged)
    body = response.get_data(as_text=True)
    assert (response.status_code, response.mimetype, "Location" in response.headers) == (400, "text/html", False)
    assert "Single sign-out not completed" in body and BYE not in body
    reason = {"unsigned": "unsigned", "other_key": "signature_invalid"}[forgery]
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "federation.logout")).all()
        assert [event.details["reason"] for event in events] == [reason]


def test_a_logout_response_to_another_request_goes_nowhere(app, client, corp, saml_idp, flow):
    """SAML core 3.7.2 (InResponseTo): an IdP-signed LogoutResponse answering another LogoutRequest than the
    one this browser's RelayState started is an HTML 400, not the RP's redirect."""
    saml_sign_in(client, saml_idp)
    location = rp_logout(client, flow.tokens()["id_token"]).headers["Location"]
    relay_state = parse_qs(urlsplit(location).query)["RelayState"][0]
    response = back_to_us(client, signed_logout_response(saml_idp.keys, saml_idp, "_another-request", relay_state))
    assert (response.status_code, "Location" in response.headers) == (400, False)
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "federation.logout")).all()
        assert [event.details["reason"] for event in events] == ["in_response_to"]


def test_a_logout_response_used_twice_is_refused(app, client, corp, saml_idp, flow):
    """The continuation is used once: the same LogoutResponse again is an HTML 400, not a second redirect."""
    saml_sign_in(client, saml_idp)
    answer = at_the_idp(rp_logout(client, flow.tokens()["id_token"]).headers["Location"]).headers["Location"]
    assert back_to_us(client, answer).status_code == 302
    again = back_to_us(client, answer)
    assert (again.status_code, "Location" in again.headers) == (400, False)


def test_a_logout_response_in_another_browser_goes_nowhere(app, client, corp, saml_idp, flow):
    """RFC 9700 4.7 applied to logout: the continuation is bound to the browser that signed out."""
    saml_sign_in(client, saml_idp)
    answer = at_the_idp(rp_logout(client, flow.tokens()["id_token"]).headers["Location"]).headers["Location"]
    other = app.test_client()
    response = back_to_us(other, answer)
    assert (response.status_code, "Location" in response.headers) == (400, False)


def test_hosted_sign_out_of_a_saml_session_goes_by_the_idp_to_the_sign_in_page(app, client, corp, saml_idp):
    """SAML Profiles 4.4.3.1 from our own sign-out page: the IdP is told, then the sign-in page."""
    saml_sign_in(client, saml_idp)
    page = client.get("/logout").get_data(as_text=True)
    response = client.post("/logout", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302 and response.headers["Location"].startswith(saml_idp.slo_url + "?")
    landed = back_to_us(client, at_the_idp(response.headers["Location"]).headers["Location"])
    assert (landed.status_code, landed.headers["Location"]) == (302, "/login")
    assert "You have been signed out." in client.get("/login").get_data(as_text=True)


def test_front_channel_iframes_come_first_then_the_idp(app, client, corp, saml_idp, factories):
    """Front-Channel Logout 1.0 4 with SAML single logout: the signed-out page frames the RP, and its Continue
    goes to the IdP's SLO URL (the RP's post_logout_redirect_uri only after the IdP answered)."""
    rp = factories.client(redirect_uris=[REDIRECT_URI], first_party=True, post_logout_redirect_uris=[BYE],
                          frontchannel_logout_uri="https://rp.example/fc")
    flow = Flow(app, client, rp)
    saml_sign_in(client, saml_idp)
    response = rp_logout(client, flow.tokens()["id_token"])
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'src="https://rp.example/fc' in html
    continue_to = unescape(re.search(r'id="continue" href="([^"]+)"', html).group(1))
    assert continue_to.startswith(saml_idp.slo_url + "?")
    landed = back_to_us(client, at_the_idp(continue_to).headers["Location"])
    assert landed.headers["Location"] == f"{BYE}?state=s1"


def test_a_password_session_logs_out_as_before(app, client, corp, saml_idp, flow, factories):
    """RPI Logout 3 unchanged for a session no SAML upstream signed in: straight to the registered URI."""
    sent = len(saml_idp.logout_requests)
    flow.sign_in(factories.user())
    response = rp_logout(client, flow.tokens()["id_token"])
    assert (response.status_code, response.headers["Location"]) == (302, f"{BYE}?state=s1")
    assert len(saml_idp.logout_requests) == sent


def test_an_idp_without_slo_url_logs_out_as_before(app, client, saml_idp, flow):
    """Without a SingleLogoutService (metadata 2.4.2) there is no LogoutRequest: straight to the RP."""
    with app.app_context():
        xml = saml_idp.metadata().replace(f'<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:'
                                          f'HTTP-Redirect" Location="{saml_idp.slo_url}"/>', "")
        stored, secrets = KIND.validate({"metadata_xml": xml}, {}, upstream_http())
        upstream = Upstream(slug="corp", kind="saml", display_name="Corp", settings=stored)
        upstreams.set_secrets(upstream, secrets)
        db.session.add(upstream)
        db.session.commit()
    saml_idp.trust_sp(client.get(f"{EXTERNAL}/corp/metadata").get_data(as_text=True))
    saml_sign_in(client, saml_idp)
    response = rp_logout(client, flow.tokens()["id_token"])
    assert (response.status_code, response.headers["Location"]) == (302, f"{BYE}?state=s1")


def test_a_refused_redirect_uri_is_explained_after_the_idp_answered(app, client, corp, saml_idp, flow):
    """RPI Logout 3: an unregistered post_logout_redirect_uri is never followed, before or after the IdP; the
    signed-out page shown once the IdP answered says why."""
    saml_sign_in(client, saml_idp)
    query = urlencode({"id_token_hint": flow.tokens()["id_token"], "post_logout_redirect_uri": "https://evil.example/"})
    response = client.get(f"/oauth2/logout?{query}")
    assert response.headers["Location"].startswith(saml_idp.slo_url + "?")
    landed = back_to_us(client, at_the_idp(response.headers["Location"]).headers["Location"])
    html = landed.get_data(as_text=True)
    assert (landed.status_code, "Location" in landed.headers) == (200, False)
    assert "You are signed out" in html and "is not registered for it" in html and "evil.example" not in html


def test_hosted_sign_out_frames_the_rps_then_continues_to_the_idp(app, client, corp, saml_idp, factories):
    """Front-Channel Logout 1.0 4 on our own sign-out page: the RP's iframe, then Continue to the IdP."""
    rp = factories.client(redirect_uris=[REDIRECT_URI], first_party=True, frontchannel_logout_uri="https://rp.example/fc")
    saml_sign_in(client, saml_idp)
    Flow(app, client, rp).tokens()
    page = client.get("/logout").get_data(as_text=True)
    response = client.post("/logout", data={"csrf_token": csrf_from(page)})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'src="https://rp.example/fc' in html
    assert unescape(re.search(r'id="continue" href="([^"]+)"', html).group(1)).startswith(saml_idp.slo_url + "?")
