"""RP-Initiated Logout 1.0 at /oauth2/logout."""
from urllib.parse import urlencode

from sqlalchemy import select

from idp.extensions import db
from idp.models import OAuthClient, User
from idp.services.seed import seed_demo_data
from tests.oidc.conftest import Flow, basic_auth, query_of
from tests.web.helpers import csrf_from


def logout_url(**params) -> str:
    return "/oauth2/logout?" + urlencode(params)


def test_logout_with_id_token_hint_ends_session_and_redirects(flow, user, client):
    """RPI Logout 2-3: a valid id_token_hint ends the session and redirects to the registered URI with state."""
    flow.sign_in(user)
    tokens = flow.tokens(scope="openid offline_access")
    response = client.get(logout_url(id_token_hint=tokens["id_token"], post_logout_redirect_uri="https://rp.example/bye",
                                     state="s1"))
    assert response.status_code == 302 and response.headers["Location"] == "https://rp.example/bye?state=s1"
    assert client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code == 401
    assert flow.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_prompt_none_after_logout_is_login_required(flow, user, client):
    """RPI Logout 2 + OIDC Core 3.1.2.6: after logout the SSO session is gone: prompt=none -> login_required."""
    flow.sign_in(user)
    id_token = flow.tokens()["id_token"]
    client.get(logout_url(id_token_hint=id_token))
    assert query_of(flow.authorize(prompt="none").headers["Location"])["error"] == "login_required"


def test_unregistered_post_logout_redirect_uri_is_not_followed(flow, user, client):
    """RPI Logout 3: a post_logout_redirect_uri not registered exactly is never redirected to."""
    flow.sign_in(user)
    id_token = flow.tokens()["id_token"]
    response = client.get(logout_url(id_token_hint=id_token, post_logout_redirect_uri="https://evil.example/"))
    assert response.status_code == 200 and "Location" not in response.headers


def test_logout_without_hint_asks_for_confirmation(flow, user, client):
    """RPI Logout 6: a request that cannot be tied to the user shows a confirmation page (CSRF-protected)."""
    flow.sign_in(user)
    page = client.get(logout_url(client_id=flow.rp.client_id, post_logout_redirect_uri="https://rp.example/bye"))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "csrf_token" in html
    assert query_of(flow.authorize().headers["Location"]).get("code")  # still signed in
    forged = client.post("/oauth2/logout", data={"confirm": "Sign out", "client_id": flow.rp.client_id})
    assert forged.status_code == 200 and "csrf_token" in forged.get_data(as_text=True)
    confirmed = client.post("/oauth2/logout", data={
        "csrf_token": csrf_from(html), "confirm": "Sign out", "client_id": flow.rp.client_id,
        "post_logout_redirect_uri": "https://rp.example/bye"})
    assert confirmed.status_code == 302 and confirmed.headers["Location"] == "https://rp.example/bye"
    assert query_of(flow.authorize(prompt="none").headers["Location"])["error"] == "login_required"


def test_logout_with_foreign_id_token_hint_is_error_page(client, flow):
    """RPI Logout 4: an id_token_hint not issued here is an error, without redirection."""
    response = client.get(logout_url(id_token_hint="a.b.c", post_logout_redirect_uri="https://rp.example/bye"))
    assert response.status_code == 400 and "Location" not in response.headers


def test_refused_post_logout_redirect_uri_is_explained_on_the_page_and_in_the_log(flow, user, client, caplog):
    """RPI Logout 3: an unregistered post_logout_redirect_uri is not followed; the signed-out page says
    so in plain words, and the log says why (INFO, with the request id, never the ID token)."""
    flow.sign_in(user)
    id_token = flow.tokens()["id_token"]
    with caplog.at_level("INFO", logger="idp"):
        response = client.get(logout_url(id_token_hint=id_token, post_logout_redirect_uri="https://evil.example/x?a=1"))
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "did not send you back to the application" in html
    assert "is not registered for it" in html
    [record] = [r for r in caplog.records if "post_logout_redirect_uri" in r.getMessage()]
    message = record.getMessage()
    assert record.levelname == "INFO" and response.headers["X-Request-ID"] in message
    assert f"not registered for client {flow.rp.client_id}" in message and "https://evil.example/x " in message
    assert id_token not in caplog.text


def test_post_logout_redirect_uri_without_any_client_is_refused_and_explained(flow, user, client, caplog):
    """RPI Logout 3: with neither client_id nor id_token_hint there is no client to match the URI against."""
    with caplog.at_level("INFO", logger="idp"):
        response = client.get(logout_url(post_logout_redirect_uri="https://rp.example/bye"))
    assert response.status_code == 200 and "could not be tied to an application" in response.get_data(as_text=True)
    assert "neither client_id nor id_token_hint names a client" in caplog.text


def test_seeded_client_may_return_users_to_127_0_0_1(app, client):
    """RPI Logout 3 (exact match): the demo client, whose redirect URIs include 127.0.0.1:3000, may send users
    back after logout to http://127.0.0.1:3000/ as well as http://localhost:3000/."""
    with app.app_context():
        seed_demo_data()
        db.session.commit()
        demo = db.session.scalars(select(OAuthClient).where(OAuthClient.client_id == "acme-portal-001")).one()
        bob = db.session.scalars(select(User).where(User.email == "bob@acme-corp.com")).one()
        demo.first_party = True
        db.session.commit()
        db.session.refresh(demo)
        db.session.refresh(bob)
        db.session.expunge_all()
    flow = Flow(app, client, demo)
    flow.sign_in(bob)
    code = flow.code(redirect_uri="http://127.0.0.1:3000/callback")
    exchanged = client.post("/oauth2/token", headers=basic_auth("acme-portal-001", "acme_secret_portal_2024"), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:3000/callback",
        "code_verifier": flow.verifier})
    id_token = exchanged.get_json()["id_token"]
    response = client.get(logout_url(id_token_hint=id_token, post_logout_redirect_uri="http://127.0.0.1:3000/"))
    assert response.status_code == 302 and response.headers["Location"] == "http://127.0.0.1:3000/"
