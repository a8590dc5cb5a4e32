"""RP-Initiated Logout 1.0 at /oauth2/logout."""
from urllib.parse import urlencode

from tests.oidc.conftest import query_of
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
