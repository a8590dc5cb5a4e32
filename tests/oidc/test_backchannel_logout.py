"""OpenID Connect Back-Channel Logout 1.0: every way a session ends tells its relying parties.

A real relying party runs on loopback (tests/oidc/relying_party.py): it validates each logout token
per section 2.6 against the IdP's JWKS fetched over HTTP and drops the RP session the token's `sid`
names, so each test shows that RP session gone.
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import requests
import time_machine
from joserfc import jwt
from sqlalchemy import select

from idp.extensions import db
from idp.jobs import run_job
from idp.models import LogoutDelivery, OAuthClient, Session, TokenPurpose, User, utcnow
from idp.oidc import backchannel_logout
from idp.services import password_reset
from idp.services import tokens as token_records
from idp.services.account_tokens import issue_token
from tests.factories import DEFAULT_PASSWORD
from tests.oidc.conftest import REDIRECT_URI, Flow, browser_for
from tests.oidc.relying_party import LOGOUT_EVENT, RelyingParty
from tests.servers import LiveServer
from tests.web.helpers import csrf_from, submit

ISSUER = "http://localhost:5000"


@pytest.fixture
def relying_party(live_server):
    """The RP on loopback; it fetches the IdP's JWKS from the app served over HTTP."""
    party = RelyingParty(jwks_url=f"{live_server.url}/oauth2/jwks", issuer=ISSUER)
    party.server.start()
    yield party
    party.server.stop()


def bcl_client(factories, party: RelyingParty, **fields) -> OAuthClient:
    client = factories.client(redirect_uris=[REDIRECT_URI], first_party=True,
                              backchannel_logout_uri=party.backchannel_logout_uri,
                              backchannel_logout_session_required=True, post_logout_redirect_uris=["https://rp.example/bye"],
                              **fields)
    party.client_id = client.client_id
    return client


@pytest.fixture
def rp(factories, relying_party):
    return bcl_client(factories, relying_party)


def signed_in_at_rp(flow: Flow, user, party: RelyingParty) -> tuple[str, dict]:
    """The user signs in at the IdP and then at the RP (code flow); the RP session is keyed by `sid`."""
    flow.sign_in(user)
    tokens = flow.tokens()
    return party.sign_in(tokens["id_token"]), tokens


def deliveries(app) -> list[LogoutDelivery]:
    with app.app_context():
        return list(db.session.scalars(select(LogoutDelivery).order_by(LogoutDelivery.created_at)))


def wait_settled(app, timeout: float = 10.0) -> list[LogoutDelivery]:
    """The deliveries once every delivery thread has finished (a bounded wait)."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name == "backchannel-logout":
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), "a delivery thread outlived the test's bound"
    return deliveries(app)


def delivered(count: int) -> str:
    """The job's report line when `count` tokens were delivered and none failed."""
    return f"deliver_logout_tokens: delivered {count} back-channel logout token(s), 0 failed"


def api_token(client, user) -> dict:
    body = client.post("/api/v1/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD}).get_json()
    return {"Authorization": f"Bearer {body['data']['token']}"}


def closed(response):
    """As a WSGI server does once the body is sent: runs the after-response work (the delivery thread)."""
    response.close()
    return response


# -- every trigger -------------------------------------------------------------------------------

def sign_out_at_idp(app, client, flow, sid, tokens, user):
    return submit(client, "/logout", {})


def rp_initiated_logout(app, client, flow, sid, tokens, user):
    query = urlencode({"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://rp.example/bye"})
    return closed(client.get(f"/oauth2/logout?{query}"))


def revoke_on_account_page(app, client, flow, sid, tokens, user):
    return submit(client, "/account/sessions", {}, action=f"/account/sessions/{sid}/revoke")


def revoke_through_api(app, client, flow, sid, tokens, user):
    api = app.test_client()
    return closed(api.delete(f"/api/v1/auth/sessions/{sid}", headers=api_token(api, user)))


def change_password_through_api(app, client, flow, sid, tokens, user):
    api = app.test_client()
    body = {"current_password": DEFAULT_PASSWORD, "new_password": "Another-Horse-77!"}
    return closed(api.post("/api/v1/users/me/password", json=body, headers=api_token(api, user)))


def delete_account_through_api(app, client, flow, sid, tokens, user):
    api = app.test_client()
    return closed(api.delete("/api/v1/users/me", json={"password": DEFAULT_PASSWORD}, headers=api_token(api, user)))


@pytest.mark.parametrize("trigger", [sign_out_at_idp, rp_initiated_logout, revoke_on_account_page, revoke_through_api,
                                     change_password_through_api, delete_account_through_api])
def test_each_way_a_session_ends_logs_the_rp_out(app, client, flow, user, relying_party, trigger):
    """BCL 2.3, 2.5-2.7: IdP sign-out, RP-initiated logout, revocation on the account page or through the
    API, a password change and account deletion each POST a logout token that passes the RP's 2.6
    validation, and the RP session with that sid is gone."""
    sid, tokens = signed_in_at_rp(flow, user, relying_party)
    response = trigger(app, client, flow, sid, tokens, user)
    assert response.status_code < 400
    assert relying_party.wait_logged_out(sid), relying_party.refusals
    [claims] = relying_party.claims
    assert claims["sid"] == sid and claims["aud"] == relying_party.client_id
    assert [row.status for row in wait_settled(app)] == ["SENT"]


def test_password_reset_logs_the_rp_out_through_the_job(app, flow, user, relying_party):
    """BCL 2.3: a password reset ends every session; outside a request the queued logout token waits for
    the job (`flask run-jobs`), which delivers it."""
    sid, _ = signed_in_at_rp(flow, user, relying_party)
    with app.test_request_context():
        token = issue_token(db.session.get(User, user.id), TokenPurpose.RESET_PASSWORD)
        db.session.commit()
    with app.app_context():
        password_reset.reset_password(token, "Fresh-Horse-99!")
        db.session.commit()
        assert sid in relying_party.sessions
        assert run_job("deliver_logout_tokens") == [delivered(1)]
    assert relying_party.wait_logged_out(sid)


# -- the logout token and its request ------------------------------------------------------------

def test_logout_token_is_a_typed_short_lived_jwt_without_nonce(client, flow, user, relying_party):
    """BCL 2.4: typ logout+jwt; iss, aud (the client_id), iat, a short exp, jti, sub, sid and the
    back-channel logout event with an empty object; never a nonce. Sent (2.5) as a form POST of
    logout_token alone."""
    sid, tokens = signed_in_at_rp(flow, user, relying_party)
    submit(client, "/logout", {})
    assert relying_party.wait_logged_out(sid)
    [claims] = relying_party.claims
    id_token = jwt.decode(tokens["id_token"], relying_party._keys()).claims
    assert set(claims) == {"iss", "aud", "iat", "exp", "jti", "sub", "sid", "events"}
    assert claims["events"] == {LOGOUT_EVENT: {}} and claims["sub"] == id_token["sub"] and claims["iss"] == ISSUER
    assert 0 < claims["exp"] - claims["iat"] <= 120
    [sent] = relying_party.requests
    assert sent["content_type"] == "application/x-www-form-urlencoded" and list(sent["form"]) == ["logout_token"]


def test_logout_token_is_signed_like_the_clients_id_tokens(client, factories, app, user, relying_party):
    """BCL 2.4: the rules for signing ID tokens apply: a client with ES256 ID tokens gets an ES256 logout token."""
    es_rp = bcl_client(factories, relying_party, id_token_signed_response_alg="ES256")
    flow = Flow(app, client, es_rp)
    sid, _ = signed_in_at_rp(flow, user, relying_party)
    submit(client, "/logout", {})
    assert relying_party.wait_logged_out(sid)
    [sent] = relying_party.requests
    header = jwt.decode(sent["form"]["logout_token"][0], relying_party._keys()).header
    assert header["alg"] == "ES256" and header["typ"] == "logout+jwt"


def test_only_clients_with_a_backchannel_logout_uri_get_a_token(app, client, factories, flow, user, relying_party):
    """BCL 2.2-2.3: a relying party of the session without backchannel_logout_uri is sent nothing."""
    sid, _ = signed_in_at_rp(flow, user, relying_party)
    silent = factories.client(redirect_uris=[REDIRECT_URI], first_party=True)
    Flow(app, client, silent).tokens()
    submit(client, "/logout", {})
    assert relying_party.wait_logged_out(sid)
    rows = wait_settled(app)
    assert [row.oauth_client_id for row in rows] == [flow.rp.id]
    assert [c["aud"] for c in relying_party.claims] == [relying_party.client_id]


def test_discovery_advertises_back_channel_logout(client):
    """BCL 2.1: backchannel_logout_supported and backchannel_logout_session_supported (sid in ID tokens) are true."""
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["backchannel_logout_supported"] is True and metadata["backchannel_logout_session_supported"] is True


# -- delivery: retries, bounds, durability, never blocking ---------------------------------------

@pytest.fixture
def failing_party(live_server):
    party = RelyingParty(jwks_url=f"{live_server.url}/oauth2/jwks", issuer=ISSUER, status=503)
    party.server.start()
    yield party
    party.server.stop()


def test_failing_rp_is_retried_then_given_up(make_app, factories, user, failing_party):
    """A relying party answering 503 (not 200, BCL 2.8) is retried, LOGOUT_DELIVERY_ATTEMPTS times in all,
    then given up (FAILED, the cause kept); the job sends it nothing more."""
    app = make_app(LOGOUT_RETRY_DELAY=0, LOGOUT_DELIVERY_ATTEMPTS=3)
    browser = app.test_client()
    flow = Flow(app, browser, bcl_client(factories, failing_party))
    flow.sign_in(user)
    flow.tokens()
    submit(browser, "/logout", {})
    assert failing_party.wait_until(lambda: len(failing_party.requests) >= 3)
    [row] = wait_settled(app)
    assert (row.status, row.attempts, row.last_error) == ("FAILED", 3, "the relying party answered HTTP 503")
    with app.app_context():
        run_job("deliver_logout_tokens")
    assert len(failing_party.requests) == 3


def test_a_delivery_that_failed_is_retried_by_the_job_when_due(make_app, factories, user, failing_party):
    """A failed attempt waits LOGOUT_RETRY_DELAY (beyond the thread's window, so the job's); the job
    leaves it until due, then delivers once the RP is back."""
    app = make_app(LOGOUT_RETRY_DELAY=60)
    browser = app.test_client()
    flow = Flow(app, browser, bcl_client(factories, failing_party))
    flow.sign_in(user)
    sid = failing_party.sign_in(flow.tokens()["id_token"])
    submit(browser, "/logout", {})
    [row] = wait_settled(app)
    assert (row.status, row.attempts) == ("PENDING", 1)
    failing_party.status = 200
    with app.app_context():
        assert run_job("deliver_logout_tokens") == [delivered(0)]
        with time_machine.travel(utcnow() + timedelta(seconds=61)):
            assert run_job("deliver_logout_tokens") == [delivered(1)]
    assert sid not in failing_party.sessions and deliveries(app)[0].status == "SENT"


def test_a_crash_before_delivery_loses_nothing(app, client, flow, user, relying_party, monkeypatch):
    """The delivery is a row committed with the sign-out: if the process dies before its thread runs,
    the job delivers it."""
    monkeypatch.setattr(backchannel_logout, "_deliver_in_thread", lambda app, ids: None)
    sid, _ = signed_in_at_rp(flow, user, relying_party)
    submit(client, "/logout", {})
    assert [row.status for row in deliveries(app)] == ["PENDING"] and sid in relying_party.sessions
    with app.app_context():
        run_job("deliver_logout_tokens")
    assert relying_party.wait_logged_out(sid)


def test_a_slow_rp_never_delays_the_users_sign_out(make_app, factories, user, live_server):
    """Delivery happens after the response, off the request thread: a relying party that hangs does not
    slow the sign-out page, and the attempt ends at LOGOUT_DELIVERY_TIMEOUT."""
    release = threading.Event()
    party = RelyingParty(jwks_url=f"{live_server.url}/oauth2/jwks", issuer=ISSUER, block=release)
    party.server.start()
    idp = LiveServer(make_app(LOGOUT_DELIVERY_TIMEOUT=1, LOGOUT_DELIVERY_ATTEMPTS=1))
    idp.start()
    try:
        rp_client = bcl_client(factories, party)
        browser = _http_browser_signed_in(idp, user, rp_client)
        page = browser.get(f"{idp.url}/logout", timeout=5)
        started = time.monotonic()
        response = browser.post(f"{idp.url}/logout", data={"csrf_token": csrf_from(page.text)},
                                headers={"Referer": f"{idp.url}/logout"}, timeout=5, allow_redirects=False)
        elapsed = time.monotonic() - started
        assert response.status_code == 302 and elapsed < 1.0
        assert party.wait_until(lambda: len(party.requests) == 1, timeout=5)
        [row] = wait_settled(idp.app)
        assert row.status == "FAILED" and row.last_error == "POST failed: ReadTimeout"
    finally:
        release.set()
        party.server.stop()
        idp.stop()


def _http_browser_signed_in(server, user, client: OAuthClient) -> requests.Session:
    """A browser (requests) with an SSO session on `server` under which `client` holds a token."""
    browser = browser_for(server, user)
    with server.app.app_context():
        session = db.session.scalars(select(Session).where(Session.user_id == user.id)).one()
        token_records.record_access_token(db.session.get(OAuthClient, client.id), db.session.get(User, user.id),
                                          "jti-slow", "openid", utcnow() + timedelta(hours=1), session_id=session.id)
        db.session.commit()
    return browser


# -- the SSRF guard ------------------------------------------------------------------------------

@pytest.mark.parametrize("uri", ["http://127.0.0.1:9/backchannel", "https://127.0.0.1/backchannel",
                                 "https://10.0.0.8/logout", "https://169.254.169.254/latest"])
def test_internal_backchannel_logout_uri_is_never_requested_in_production(make_app, uri, monkeypatch):
    """With ALLOW_PRIVATE_LOGOUT_URI off (production), plain http and loopback, private or link-local
    addresses are refused before any connection is made."""
    guarded = make_app(ALLOW_PRIVATE_LOGOUT_URI=False)
    connects = []
    monkeypatch.setattr("urllib3.util.connection.create_connection", lambda *a, **k: connects.append(a))
    with guarded.app_context(), pytest.raises(backchannel_logout.LogoutDeliveryError):
        backchannel_logout.post_logout_token(uri, "a.b.c")
    assert connects == []


def test_loopback_rp_gets_nothing_in_production_config(make_app, factories, user, relying_party):
    """End to end with the guard on: the loopback RP never sees a request; the refusal is the row's last error."""
    app = make_app(ALLOW_PRIVATE_LOGOUT_URI=False, LOGOUT_RETRY_DELAY=0, LOGOUT_DELIVERY_ATTEMPTS=2)
    browser = app.test_client()
    flow = Flow(app, browser, bcl_client(factories, relying_party))
    flow.sign_in(user)
    flow.tokens()
    submit(browser, "/logout", {})
    [row] = wait_settled(app)
    assert row.status == "FAILED" and row.last_error == "backchannel_logout_uri scheme 'http' is not allowed"
    assert relying_party.requests == []
