"""The whole code flow over real HTTP with a real relying-party library (Authlib's OAuth2Session)."""
import threading

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.oidc.conftest import REDIRECT_URI, SECRET, browser_for, pkce_pair, query_of


@pytest.fixture
def live_rp(factories):
    return factories.client(redirect_uris=[REDIRECT_URI], first_party=True,
                            grant_types=["authorization_code", "refresh_token"],
                            scope="openid profile email offline_access")


def authorize_over_http(server, rp, user, **extra) -> tuple[OAuth2Session, str, str]:
    metadata = requests.get(server.url + "/.well-known/openid-configuration", timeout=5).json()
    session = OAuth2Session(rp.client_id, SECRET, scope="openid profile email offline_access",
                            redirect_uri=REDIRECT_URI, code_challenge_method="S256")
    verifier, _ = pkce_pair()
    uri, state = session.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier,
                                                  nonce="nonce-live", **extra)
    response = browser_for(server, user).get(uri, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    return session, response.headers["Location"], verifier


def test_code_flow_with_authlib_client_and_verified_id_token(oidc_server, live_rp, factories):
    """OIDC Core 3.1: discovery -> authorize -> token -> ID token verified with the JWKS -> userinfo."""
    user = factories.user(email="ada@example.com")
    metadata = requests.get(oidc_server.url + "/.well-known/openid-configuration", timeout=5).json()
    session, location, verifier = authorize_over_http(oidc_server, live_rp, user)
    assert query_of(location)["iss"] == oidc_server.url
    token = session.fetch_token(metadata["token_endpoint"], authorization_response=location,
                                code_verifier=verifier)
    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=5).json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    claims = id_token.claims
    assert id_token.header["kid"] and claims["iss"] == oidc_server.url and claims["aud"] == live_rp.client_id
    assert claims["nonce"] == "nonce-live" and claims["sub"] == user.subject and claims["sid"]
    assert {"exp", "iat", "auth_time", "at_hash", "amr", "acr"} <= set(claims)
    access = jwt.decode(token["access_token"], keys, algorithms=["RS256"])
    assert access.header["typ"] == "at+jwt" and access.header["kid"] and access.claims["client_id"] == live_rp.client_id
    assert {"iss", "sub", "aud", "scope", "exp", "iat", "jti"} <= set(access.claims)
    userinfo = session.get(metadata["userinfo_endpoint"], timeout=5).json()
    assert userinfo["sub"] == user.subject and userinfo["email"] == "ada@example.com"


def test_refresh_over_http_rotates(oidc_server, live_rp, factories):
    """OAuth 2.0 client refresh via Authlib: a new refresh token each time (RFC 9700 4.14.2)."""
    user = factories.user()
    session, location, verifier = authorize_over_http(oidc_server, live_rp, user)
    token_url = oidc_server.url + "/oauth2/token"
    first = session.fetch_token(token_url, authorization_response=location, code_verifier=verifier)
    second = session.refresh_token(token_url, refresh_token=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"]


@pytest.mark.postgres
def test_concurrent_redemptions_let_exactly_one_win(oidc_server, live_rp, factories):
    """RFC 6749 4.1.2: 20 concurrent redemptions of one code on PostgreSQL -> exactly one succeeds."""
    user = factories.user()
    _, location, verifier = authorize_over_http(oidc_server, live_rp, user)
    code = query_of(location)["code"]
    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def redeem():
        barrier.wait()
        response = requests.post(oidc_server.url + "/oauth2/token", auth=(live_rp.client_id, SECRET), timeout=30, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=redeem) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [400] * 19


def test_demo_client_through_hosted_login_and_consent(client, app):
    """The seeded acme-portal-001 completes the code flow at http://localhost:3000/callback via /login and /consent."""
    from urllib.parse import urlencode

    from idp.extensions import db
    from idp.services.seed import seed_demo_data
    from tests.oidc.conftest import basic_auth
    from tests.web.helpers import sign_in, submit

    with app.app_context():
        seed_demo_data()
        db.session.commit()
    verifier, challenge = pkce_pair()
    callback = "http://localhost:3000/callback"
    start = client.get("/oauth2/authorize?" + urlencode({
        "response_type": "code", "client_id": "acme-portal-001", "redirect_uri": callback, "state": "demo",
        "scope": "openid profile email offline_access", "code_challenge": challenge, "code_challenge_method": "S256"}))
    request_id = query_of(start.headers["Location"])["request"]
    signed_in = sign_in(client, "bob@acme-corp.com", "UserPass123!", request_id=request_id)
    resume = client.get(signed_in.headers["Location"])
    consent_page = resume.headers["Location"]
    assert consent_page.endswith(f"/consent/{request_id}")
    allowed = submit(client, consent_page, {"allow": "Allow"})
    final = client.get(allowed.headers["Location"])
    assert final.headers["Location"].startswith(callback + "?")
    code = query_of(final.headers["Location"])["code"]
    token = client.post("/oauth2/token", headers=basic_auth("acme-portal-001", "acme_secret_portal_2024"), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": callback, "code_verifier": verifier})
    assert token.status_code == 200 and {"access_token", "id_token", "refresh_token"} <= set(token.get_json())


def test_two_app_instances_share_requests_codes_and_keys(make_app, factories):
    """Scale-out: a request started on one node resumes, redeems and rotates keys on another."""
    from tests.oidc.conftest import Flow

    node_a, node_b = make_app(), make_app()
    rp = factories.client(redirect_uris=[REDIRECT_URI], first_party=True)
    user = factories.user()
    flow_a = Flow(node_a, node_a.test_client(), rp)
    request_id = query_of(flow_a.authorize().headers["Location"])["request"]
    flow_b = Flow(node_b, node_b.test_client(), rp, verifier=flow_a.verifier)
    flow_b.sign_in(user)
    code = query_of(flow_b.client.get(f"/oauth2/authorize/resume/{request_id}").headers["Location"])["code"]
    tokens = flow_a.exchange(code).get_json()
    node_b.extensions["oidc"]["keys"].generate("RS256")
    _, promoted = node_b.extensions["oidc"]["keys"].rotate("RS256")
    with node_a.app_context():
        assert node_a.extensions["oidc"]["keys"].signing_key("RS256").kid == promoted["kid"]
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert flow_a.client.get("/oauth2/userinfo", headers=bearer).status_code == 200
    assert flow_b.client.get("/oauth2/userinfo", headers=bearer).status_code == 200
