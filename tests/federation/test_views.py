"""The federation endpoints through the real blueprint, against the Google-shaped stand-in OP over loopback."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode, urlsplit

import pytest
import requests
import time_machine
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.extensions import db
from idp.federation.browser_binding import COOKIE_PATH, PLAIN_COOKIE, SECURE_COOKIE
from idp.models import AuditEvent, FederatedIdentity, PendingLink, Session, Upstream, User
from idp.services import upstreams
from tests.federation.saml_support import own_idp  # noqa: F401 (fixture)
from tests.federation.standins.oidc_provider import follow_authorize, running
from tests.oidc.conftest import REDIRECT_URI, Flow, query_of
from tests.web.helpers import csrf_from
from tests.web.helpers import sign_in as password_sign_in

EXTERNAL = "/api/v1/auth/external"
ADA = "ada@gmail.com"


@pytest.fixture
def provider():
    yield from running("google")


def add_upstream(app, provider, slug: str = "google", **fields) -> str:
    with app.app_context():
        upstream = Upstream(slug=slug, kind="google", display_name=fields.pop("display_name", "Google"),
                            settings={"issuer": provider.issuer, "client_id": provider.client_id}, **fields)
        upstreams.set_secrets(upstream, {"client_secret": provider.client_secret})
        db.session.add(upstream)
        db.session.commit()
        return upstream.id


@pytest.fixture
def google(app, provider):
    return add_upstream(app, provider)


def start(client, slug: str = "google", query: str = "") -> str:
    response = client.get(f"{EXTERNAL}/{slug}/login{query}")
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def callback(client, params: dict, slug: str = "google"):
    return client.get(f"{EXTERNAL}/{slug}/callback?{urlencode(params)}")


def round_trip(client, slug: str = "google", query: str = ""):
    """The browser's whole trip: our login, the stand-in's /authorize, back to our callback."""
    return callback(client, follow_authorize(start(client, slug, query)), slug)


def failures(app, reason: str) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.outcome == "failure")).all()
        return [row for row in rows if (row.details or {}).get("reason") == reason]


def session_count(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(Session)).all())


def assert_refused(app, response, status: int, reason: str):
    body = response.get_data(as_text=True)
    assert (response.status_code, response.mimetype) == (status, "text/html"), body
    assert "Traceback" not in body and "Back to sign-in" in body
    assert [row.action for row in failures(app, reason)] in (["federation.sign_in"], ["federation.login"])
    assert session_count(app) == 0


def test_first_sign_in_provisions_and_opens_the_account_page(app, client, google, provider):
    """No pending request: the callback provisions Ada, signs her in (SSO cookie) and opens the account page."""
    response = round_trip(client)
    assert (response.status_code, response.headers["Location"]) == (302, "/account")
    assert any(c.startswith("authy2_session=") for c in response.headers.getlist("Set-Cookie"))
    with app.app_context():
        user = db.session.scalars(select(User)).one()
        assert (user.email, user.email_verified, user.password_hash) == (ADA, True, None)
        session = db.session.scalars(select(Session)).one()
        assert (session.amr, session.idp) == (["fed"], "google")
    assert client.get("/account").status_code == 200


def test_binding_cookie_is_http_only_path_scoped_and_lax_under_http(client, google):
    """The binding cookie: HttpOnly, Path=/api/v1/auth/external/, SameSite=Lax under an http ISSUER."""
    response = client.get(f"{EXTERNAL}/google/login")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(PLAIN_COOKIE + "="))
    assert f"Path={COOKIE_PATH}" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_binding_cookie_under_https_is_secure_prefixed_and_samesite_none(make_app, provider):
    """Under https: __Secure- prefix, Secure, SameSite=None (the SAML and form_post callbacks are cross-site POSTs)."""
    other = make_app(ISSUER="https://idp.example")
    add_upstream(other, provider)
    response = other.test_client().get(f"{EXTERNAL}/google/login", base_url="https://idp.example")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(SECURE_COOKIE + "="))
    assert "Secure" in cookie and "SameSite=None" in cookie and "HttpOnly" in cookie


def test_code_flow_through_the_upstream_gives_amr_fed_and_idp(app, client, google, provider, factories):
    """OIDC Core 2 amr: a federated sign-in's ID token says amr ["fed"] and idp "google" (as Auth0 and Azure AD B2C
    name it), userinfo says idp too; the pending request resumes to the RP with a code, login_hint forwarded."""
    rp = factories.client(redirect_uris=[REDIRECT_URI], first_party=True)
    flow = Flow(app, client, rp)
    login = flow.authorize(login_hint=ADA)
    request_id = query_of(login.headers["Location"])["request"]
    back = round_trip(client, query="?" + urlencode({"request": request_id}))
    assert provider.authorization_requests[-1]["login_hint"] == ADA
    assert back.headers["Location"] == f"/oauth2/authorize/resume/{request_id}"
    code = query_of(client.get(back.headers["Location"]).headers["Location"])["code"]
    tokens = flow.exchange(code).get_json()
    keys = KeySet.import_key_set(client.get("/oauth2/jwks").get_json())
    claims = jwt.decode(tokens["id_token"], keys).claims
    assert (claims["amr"], claims["idp"]) == (["fed"], "google")
    userinfo = client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.get_json()["idp"] == "google"


def test_replayed_state_is_refused(app, client, google, provider):
    """RFC 6749 10.12: a state is used once; the same callback again is refused (400, state_used)."""
    params = follow_authorize(start(client))
    assert callback(client, params).status_code == 302
    client.delete_cookie("authy2_session")
    with app.app_context():
        for session in db.session.scalars(select(Session)):
            db.session.delete(session)
        db.session.commit()
    assert_refused(app, callback(client, params), 400, "state_used")


def test_state_from_another_browser_is_refused(app, client, google, provider):
    """Login CSRF (RFC 6749 10.12, RFC 9700 4.7): an attacker's own state and code, replayed in a victim's
    browser that lacks the binding cookie, sign nobody in (400, state_other_browser)."""
    params = follow_authorize(start(client))
    victim = app.test_client()
    assert_refused(app, callback(victim, params), 400, "state_other_browser")
    victim.set_cookie(PLAIN_COOKIE, "not-the-attackers-cookie", path=COOKIE_PATH)
    response = callback(victim, params)
    assert response.status_code == 400 and len(failures(app, "state_other_browser")) == 2


def test_state_of_one_upstream_at_another_upstreams_callback_is_refused(app, client, google, provider):
    """Mix-up (RFC 9700 4.4): an answer for upstream A presented at upstream B's callback is refused."""
    add_upstream(app, provider, "google-two", display_name="Google Two")
    params = follow_authorize(start(client, "google"))
    assert_refused(app, callback(client, params, slug="google-two"), 400, "state_other_upstream")


def test_expired_state_is_refused(app, client, google, provider):
    """A started sign-in lives UPSTREAM_LOGIN_LIFETIME seconds; a later answer is refused (400, state_expired)."""
    with time_machine.travel("2026-06-01 10:00:00", tick=False) as clock:
        url = start(client)
        clock.shift(app.config["UPSTREAM_LOGIN_LIFETIME"] + 1)
        assert_refused(app, callback(client, follow_authorize(url)), 400, "state_expired")


def test_upstream_disabled_mid_flow_signs_nobody_in(app, client, google, provider):
    """A disabled upstream can no longer sign anyone in, mid-flow included (404, upstream_unavailable)."""
    params = follow_authorize(start(client))
    with app.app_context():
        db.session.get(Upstream, google).enabled = False
        db.session.commit()
    assert_refused(app, callback(client, params), 404, "upstream_unavailable")


def test_disabled_user_is_refused(app, client, google, provider):
    """A disabled account cannot sign in through its upstream (403, user_disabled)."""
    assert round_trip(client).status_code == 302
    with app.app_context():
        db.session.scalars(select(User)).one().is_active = False
        for session in db.session.scalars(select(Session)):
            db.session.delete(session)
        db.session.commit()
    browser = app.test_client()
    assert_refused(app, round_trip(browser), 403, "user_disabled")


def test_upstream_error_answer_is_refused_by_the_connector(app, client, google, provider):
    """RFC 6749 4.1.2.1: an error answer from the upstream is a refusal page with the connector's reason."""
    provider.error = "access_denied"
    response = round_trip(client)
    assert response.status_code == 400 and response.mimetype == "text/html"
    with app.app_context():
        [row] = db.session.scalars(select(AuditEvent).where(AuditEvent.outcome == "failure")).all()
        assert row.action == "federation.sign_in" and row.details["upstream"] == "google"
    assert session_count(app) == 0


def test_unknown_upstream_login_is_a_404_page(app, client):
    """An unknown (or disabled) upstream's login answers the hosted 404 page, not the API envelope."""
    response = client.get(f"{EXTERNAL}/nobody/login")
    assert (response.status_code, response.mimetype) == (404, "text/html")


def test_form_post_callback_needs_no_csrf_token(app, client, google, provider):
    """OAuth 2.0 Form Post Response Mode: the callback POST is authenticated by its state, not a form token."""
    params = follow_authorize(start(client) + "&response_mode=form_post")
    response = client.post(f"{EXTERNAL}/google/callback", data=params)
    assert (response.status_code, response.headers["Location"]) == (302, "/account")


def test_existing_verified_account_goes_to_the_link_page(app, client, google, provider, factories):
    """An address of a verified local account is never linked silently: the browser goes to the link page."""
    factories.user(email=ADA)
    response = round_trip(client)
    with app.app_context():
        link = db.session.scalars(select(PendingLink)).one()
        assert db.session.scalars(select(FederatedIdentity)).all() == []
    assert response.headers["Location"] == f"{EXTERNAL}/link?link={link.id}"
    assert session_count(app) == 0


def test_link_intent_by_get_is_refused(app, client, google, factories):
    """Linking CSRF: a cross-site GET cannot start linking the signed-in account to whatever upstream account
    the browser holds (400, link_not_signed_in)."""
    user = factories.user()
    password_sign_in(client, user.email)
    response = client.get(f"{EXTERNAL}/google/login?intent=link")
    assert response.status_code == 400 and failures(app, "link_not_signed_in")


def test_signed_in_user_links_an_upstream_with_the_form(app, client, google, provider, factories):
    """Link while signed in: a CSRF-checked POST starts it; the callback links the identity to that user."""
    user = factories.user(email="me@example.com")
    password_sign_in(client, user.email)
    token = csrf_from(client.get("/account").get_data(as_text=True))
    started = client.post(f"{EXTERNAL}/google/login?intent=link", data={"csrf_token": token},
                          headers={"Referer": "http://localhost/account"})
    assert started.status_code == 302
    response = callback(client, follow_authorize(started.headers["Location"]))
    assert response.headers["Location"] == "/account"
    with app.app_context():
        assert db.session.scalars(select(FederatedIdentity)).one().user_id == user.id


def test_metadata_and_slo_are_404_for_non_saml_upstreams(client, google):
    """Metadata and SLO exist for SAML upstreams only."""
    assert client.get(f"{EXTERNAL}/google/metadata").status_code == 404
    assert client.get(f"{EXTERNAL}/google/slo").status_code == 404


def test_callback_redirects_only_to_our_own_pages(app, client, google, provider):
    """The callback's redirect is one of ours (account page or oidc.resume), never taken from the answer."""
    params = follow_authorize(start(client))
    params["next"] = "https://evil.example/"
    response = callback(client, params)
    assert urlsplit(response.headers["Location"]).netloc == ""


@pytest.mark.postgres
def test_twenty_racing_uses_of_one_state_sign_in_once(app, google, provider):
    """A state is used once even when 20 callbacks race (one conditional UPDATE): one sign-in, 19 refusals."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.servers import LiveServer

    server = LiveServer(app)
    server.start()
    try:
        browser = requests.Session()
        login = browser.get(f"{server.url}{EXTERNAL}/google/login", allow_redirects=False)
        params = follow_authorize(login.headers["Location"])
        cookie = browser.cookies.get(PLAIN_COOKIE)

        def use(_):
            return requests.get(f"{server.url}{EXTERNAL}/google/callback", params=params,
                                cookies={PLAIN_COOKIE: cookie}, allow_redirects=False, timeout=30).status_code

        with ThreadPoolExecutor(20) as pool:
            codes = sorted(pool.map(use, range(20)))
    finally:
        server.stop()
    assert codes == [302] + [400] * 19


# SAML: the ACS, metadata and SLO routes against the stand-in SAML IdP.

@pytest.fixture(scope="module")
def saml_idp():
    from tests.federation.standins.saml_idp import SamlIdp

    idp = SamlIdp()
    idp.start()
    yield idp
    idp.stop()


def add_saml_upstream(app, saml_idp, **settings) -> str:
    from idp.federation.connectors import upstream_http
    from idp.federation.saml import KIND

    with app.app_context():
        stored, secrets = KIND.validate({"metadata_url": saml_idp.metadata_url, **settings}, {}, upstream_http())
        upstream = Upstream(slug="corp", kind="saml", display_name="Corp", settings=stored)
        upstreams.set_secrets(upstream, secrets)
        db.session.add(upstream)
        db.session.commit()
        return upstream.id


def trust_our_sp(client, saml_idp):
    metadata = client.get(f"{EXTERNAL}/corp/metadata")
    assert (metadata.status_code, metadata.mimetype) == (200, "application/samlmetadata+xml")
    saml_idp.trust_sp(metadata.get_data(as_text=True))


def post_to_acs(client, fields: dict):
    return client.post(f"{EXTERNAL}/corp/acs", data=fields)


def test_saml_sign_in_through_the_acs(app, client, saml_idp):
    """SAML Web Browser SSO: AuthnRequest, the IdP's signed Response POSTed to our ACS (no CSRF token), sign-in
    with the NameID and SessionIndex kept for single logout."""
    add_saml_upstream(app, saml_idp)
    trust_our_sp(client, saml_idp)
    action, fields = saml_idp.follow(start(client, "corp"))
    assert urlsplit(action).path == f"{EXTERNAL}/corp/acs"
    response = post_to_acs(client, fields)
    assert (response.status_code, response.headers["Location"]) == (302, "/account"), response.get_data(as_text=True)
    with app.app_context():
        session = db.session.scalars(select(Session)).one()
        assert session.idp == "corp" and session.upstream_session["name_id"] == saml_idp.user["name_id"]


def test_unsolicited_saml_response_replayed_is_refused(app, client, saml_idp):
    """SAML Profiles 4.1.4.5: an IdP-initiated (allowed) assertion signs in once; the same one again is a replay."""
    add_saml_upstream(app, saml_idp, allow_idp_initiated=True)
    trust_our_sp(client, saml_idp)
    fields = saml_idp.response_form(None)
    assert post_to_acs(client, fields).headers["Location"] == "/account"
    other = app.test_client()
    response = post_to_acs(other, fields)
    assert (response.status_code, response.mimetype) == (400, "text/html")
    assert failures(app, "replay")


def test_unsolicited_saml_response_is_refused_unless_allowed(app, client, saml_idp):
    """Unsolicited responses are refused where allow_idp_initiated is off (the default): no session."""
    add_saml_upstream(app, saml_idp)
    trust_our_sp(client, saml_idp)
    response = post_to_acs(client, saml_idp.response_form(None))
    assert (response.status_code, response.mimetype) == (400, "text/html")
    assert session_count(app) == 0


def test_saml_logout_request_ends_the_named_session(app, client, saml_idp):
    """SAML Profiles 4.4.4: the IdP's signed LogoutRequest ends that NameID's session and gets our LogoutResponse."""
    add_saml_upstream(app, saml_idp)
    trust_our_sp(client, saml_idp)
    post_to_acs(client, saml_idp.follow(start(client, "corp"))[1])
    with app.app_context():
        session = db.session.scalars(select(Session)).one()
        name_id, index = session.upstream_session["name_id"], session.upstream_session.get("session_index")
    parts = urlsplit(saml_idp.logout_request_url(name_id, index))
    response = client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 302 and response.headers["Location"].startswith(saml_idp.slo_url)
    with app.app_context():
        assert db.session.scalars(select(Session)).one().status == "REVOKED"
    assert client.get("/account").status_code == 302


# SAML: what the connector learns (metadata refreshed, rollover settled) is stored, answer accepted or not.

def stored_settings(app, upstream_id: str) -> dict:
    with app.app_context():
        return dict(db.session.get(Upstream, upstream_id).settings)


def test_rollover_finished_at_the_acs_is_stored(app, client, own_idp):
    """Metadata 2.4.1.1 rollover: a signature failure re-reads metadata_url, the new key verifies, the
    rollover settles, and the stored settings trust only the new certificate afterwards."""
    from idp.federation.saml_metadata import certificate_pem

    upstream_id = add_saml_upstream(app, own_idp)
    trust_our_sp(client, own_idp)
    own_idp.rotate_keys()
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(minutes=6)):
        response = post_to_acs(client, own_idp.follow(start(client, "corp"))[1])
    assert (response.status_code, response.headers["Location"]) == (302, "/account")
    stored = stored_settings(app, upstream_id)
    assert (stored["certificates"], stored["retiring_certificates"]) == (
        [certificate_pem(own_idp.keys.cert_pem)], [])


def test_refresh_caused_by_a_refused_answer_is_stored(app, client, own_idp):
    """A refused answer (transient NameID, core 8.3.8, checked after the signature) rolls the request back,
    but what the connector learnt on the way is kept: the re-read metadata and the settled rollover."""
    from idp.federation.saml_metadata import certificate_pem

    upstream_id = add_saml_upstream(app, own_idp)
    trust_our_sp(client, own_idp)
    own_idp.rotate_keys()
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(minutes=6)):
        own_idp.follow(start(client, "corp"))
        request = own_idp.authn_requests[-1]
        fields = own_idp.response_form(request["id"], request["relay_state"],
                                           name_id_format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient")
        fetched = own_idp.hits["metadata"]
        response = post_to_acs(client, fields)
    assert (response.status_code, own_idp.hits["metadata"]) == (400, fetched + 1)
    stored = stored_settings(app, upstream_id)
    assert (stored["certificates"], stored["retiring_certificates"]) == (
        [certificate_pem(own_idp.keys.cert_pem)], [])
    assert failures(app, "subject_missing")
