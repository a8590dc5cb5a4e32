"""OpenID Connect Front-Channel Logout 1.0: the signed-out page frames each relying party's logout URI."""
from __future__ import annotations

import re
import time
from datetime import timedelta
from html import unescape
from urllib.parse import urlencode

import pytest
from flask import Flask, request
from sqlalchemy import select

from idp.extensions import db
from idp.models import OAuthClient, Session, SessionKind, User, utcnow
from idp.oidc.tokens import GrantContext, mint_id_token
from idp.services import tokens as token_records
from idp.services.browser_sessions import PLAIN_COOKIE
from idp.services.sessions import create_session
from tests.oidc.conftest import REDIRECT_URI, Flow
from tests.servers import LiveServer
from tests.web.helpers import submit

ISSUER = "http://localhost:5000"
IFRAME = re.compile(r'<iframe class="logout-frame" src="([^"]+)"')


def frames_of(response) -> list[str]:
    return [unescape(src) for src in IFRAME.findall(response.get_data(as_text=True))]


def frame_src(response) -> str | None:
    directives = dict(d.strip().split(" ", 1) for d in response.headers["Content-Security-Policy"].split(";"))
    return directives.get("frame-src")


def fcl_client(factories, uri: str = "https://rp.example/fc", required: bool = True, **fields):
    fields.setdefault("redirect_uris", [REDIRECT_URI])
    fields.setdefault("post_logout_redirect_uris", ["https://rp.example/bye"])
    return factories.client(first_party=True, frontchannel_logout_uri=uri, frontchannel_logout_session_required=required,
                            **fields)


@pytest.fixture
def rp(factories):
    return fcl_client(factories)


def test_rp_initiated_logout_frames_the_rp_then_continues(flow, user, client):
    """FCL 4 and 5: RP-initiated logout renders the RP's frontchannel_logout_uri in an iframe, with iss and
    sid (2, frontchannel_logout_session_required), then goes on to the post_logout_redirect_uri with state;
    the page works without JavaScript (a link) and its script carries the CSP nonce."""
    sid = flow.sign_in(user)
    id_token = flow.tokens()["id_token"]
    query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": "https://rp.example/bye", "state": "s1"})
    response = client.get(f"/oauth2/logout?{query}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert frames_of(response) == [f"https://rp.example/fc?{urlencode({'iss': ISSUER, 'sid': sid})}"]
    assert 'href="https://rp.example/bye?state=s1"' in html
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    assert f'<script nonce="{nonce}">' in html


def test_frames_carry_no_session_parameters_unless_required(app, client, factories, user):
    """FCL 2: without frontchannel_logout_session_required the URI is framed as registered; a registered
    query component is kept when iss and sid are added."""
    plain = fcl_client(factories, "https://rp.example/fc?lang=en", required=False)
    with_sid = fcl_client(factories, "https://rp.example/fc2?lang=en", required=True)
    flow = Flow(app, client, plain)
    sid = flow.sign_in(user)
    flow.tokens()
    Flow(app, client, with_sid).tokens()
    response = submit(client, "/logout", {})
    assert sorted(frames_of(response)) == ["https://rp.example/fc2?lang=en&" + urlencode({"iss": ISSUER, "sid": sid}),
                                           "https://rp.example/fc?lang=en"]


def test_sign_out_page_csp_frames_exactly_the_rps_origins(app, client, factories, user):
    """FCL 4: the IdP's own sign-out renders one iframe per RP of the session, and that response's CSP
    frame-src lists exactly their origins (not 'self', not a wildcard)."""
    first = fcl_client(factories, "https://rp.example/fc")
    second = fcl_client(factories, "https://other.example:8443/logout", redirect_uris=["https://other.example:8443/cb"])
    Flow(app, client, first).sign_in(user)
    Flow(app, client, first).tokens()
    Flow(app, client, second).code(redirect_uri="https://other.example:8443/cb")
    response = submit(client, "/logout", {})
    assert response.status_code == 200 and len(frames_of(response)) == 2
    assert frame_src(response) == "https://other.example:8443 https://rp.example"


def test_no_other_page_frames_anything(client, flow, user, factories):
    """Only a signed-out page with relying parties to frame changes its CSP: the login page has no frame-src,
    and signing out a session without front-channel RPs redirects to sign-in as before."""
    assert frame_src(client.get("/login")) is None
    plain_flow = Flow(flow.app, client, factories.client(redirect_uris=[REDIRECT_URI], first_party=True))
    plain_flow.sign_in(user)
    plain_flow.tokens()
    response = submit(client, "/logout", {})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert frame_src(response) is None


def test_revoking_this_browsers_session_on_the_account_page_frames_its_rps(flow, user, client, app):
    """FCL 4: revoking the current session from the account page is a sign-out of this browser."""
    sid = flow.sign_in(user)
    flow.tokens()
    response = submit(client, "/account/sessions", {}, action=f"/account/sessions/{sid}/revoke")
    assert response.status_code == 200 and len(frames_of(response)) == 1
    with app.app_context():
        assert db.session.get(Session, sid).status == "REVOKED"
    assert client.get("/account").status_code == 302


def test_only_the_ended_sessions_rps_are_framed(app, client, factories, flow, user):
    """FCL 4: an RP that got tokens under another session (another browser) is not framed here."""
    flow.sign_in(user)
    flow.tokens()
    elsewhere = fcl_client(factories, "https://elsewhere.example/fc", redirect_uris=["https://elsewhere.example/cb"])
    other_browser = app.test_client()
    Flow(app, other_browser, elsewhere).sign_in(user)
    Flow(app, other_browser, elsewhere).code(redirect_uri="https://elsewhere.example/cb")
    response = submit(client, "/logout", {})
    assert [src.split("?")[0] for src in frames_of(response)] == ["https://rp.example/fc"]
    with app.app_context():
        assert sorted(s.status for s in db.session.scalars(select(Session))) == ["ACTIVE", "REVOKED"]


def test_discovery_advertises_front_channel_logout(client):
    """FCL 3: frontchannel_logout_supported and frontchannel_logout_session_supported are true."""
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["frontchannel_logout_supported"] is True and metadata["frontchannel_logout_session_supported"] is True


def test_a_real_browser_loads_the_rp_frame_then_continues(app, factories, user, live_server, page):
    """FCL 4-5 in Chromium: the signed-out page's CSP lets the RP's iframe load (the RP sees iss and sid),
    and once it has loaded (not on the 5-second fallback) the browser continues to the
    post_logout_redirect_uri with state."""
    hits = []
    rp_app = Flask("fcl_rp")
    seen_at = {}
    rp_app.add_url_rule("/fc", "fc", lambda: (hits.append(("fc", request.args.to_dict())),
                                              seen_at.setdefault("fc", time.monotonic()), "signed out")[2])
    rp_app.add_url_rule("/bye", "bye", lambda: (hits.append(("bye", request.args.to_dict())),
                                                seen_at.setdefault("bye", time.monotonic()), "bye")[2])
    rp_server = LiveServer(rp_app)
    rp_server.start()
    try:
        rp = fcl_client(factories, f"{rp_server.url}/fc", redirect_uris=[f"{rp_server.url}/cb"],
                        post_logout_redirect_uris=[f"{rp_server.url}/bye"])
        with app.app_context():
            db_user, db_rp = db.session.get(User, user.id), db.session.get(OAuthClient, rp.id)
            session, cookie = create_session(db_user, kind=SessionKind.BROWSER)
            token_records.record_access_token(db_rp, db_user, "jti-fcl", "openid", utcnow() + timedelta(hours=1),
                                              session_id=session.id)
            id_token = mint_id_token(db_rp, db_user, "openid", GrantContext(session_id=session.id), None, None)
            db.session.commit()
            sid = session.id
        page.context.add_cookies([{"name": PLAIN_COOKIE, "value": cookie, "url": live_server.url}])
        query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": f"{rp_server.url}/bye", "state": "s9"})
        page.goto(f"{live_server.url}/oauth2/logout?{query}")
        page.wait_for_url(f"{rp_server.url}/bye*", timeout=15000)
        assert hits == [("fc", {"iss": ISSUER, "sid": sid}), ("bye", {"state": "s9"})]
        # Continued on the frame's load, not on the page's 5-second fallback (which counts from page load).
        assert seen_at["bye"] - seen_at["fc"] < 3
    finally:
        rp_server.stop()
