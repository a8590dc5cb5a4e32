"""UserInfo (OIDC Core 5.3) with the bearer methods of RFC 6750."""


def test_userinfo_get_with_bearer_header(flow, user, client):
    """OIDC Core 5.3.1 / RFC 6750 2.1: GET with the Authorization header returns scope claims."""
    flow.sign_in(user)
    token = flow.tokens(scope="openid email phone")["access_token"]
    response = client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"})
    body = response.get_json()
    assert response.status_code == 200 and body["sub"] == user.subject
    assert body["email"] == user.email and body["email_verified"] is True
    assert body["phone_number"] == "+441234567890" and "name" not in body


def test_userinfo_post_with_header_and_with_form_body(flow, user, client):
    """OIDC Core 5.3.1 / RFC 6750 2.2: POST with the header, and with access_token in the form body."""
    flow.sign_in(user)
    token = flow.tokens()["access_token"]
    assert client.post("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    response = client.post("/oauth2/userinfo", data={"access_token": token})
    assert response.status_code == 200 and response.get_json()["sub"] == user.subject


def test_userinfo_without_token_is_401_with_challenge(client):
    """RFC 6750 3.1: no credentials -> 401 with WWW-Authenticate: Bearer and no error code."""
    response = client.get("/oauth2/userinfo")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error=" not in response.headers["WWW-Authenticate"]


def test_userinfo_with_bad_token_is_invalid_token(client):
    """RFC 6750 3.1: a malformed or foreign token -> 401 invalid_token."""
    response = client.get("/oauth2/userinfo", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_userinfo_needs_openid_scope(client, rp):
    """OIDC Core 5.3: a token without openid (client credentials) is refused."""
    from tests.oidc.conftest import basic_auth

    token = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                        headers=basic_auth(rp.client_id)).get_json()["access_token"]
    response = client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403 and response.get_json()["error"] == "insufficient_scope"


def test_userinfo_token_in_two_places_is_invalid_request(flow, user, client):
    """RFC 6750 2: a client must not use more than one method to send the token."""
    flow.sign_in(user)
    token = flow.tokens()["access_token"]
    response = client.post("/oauth2/userinfo", data={"access_token": token},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_organizations_scope_lists_memberships(flow, user, client, factories):
    """The organizations scope adds memberships with id, name and role."""
    org = factories.organization(name="Acme")
    factories.membership(org, user, "admin")
    flow.sign_in(user)
    token = flow.tokens(scope="openid organizations")["access_token"]
    body = client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert body["organizations"] == [{"id": org.id, "name": "Acme", "role": "admin"}]


def test_tokens_die_with_a_revoked_session_but_outlive_an_idle_one(flow, user, client, app):
    """A session ended on purpose (any logout path) kills its tokens; an idle-expired one does not."""
    from datetime import datetime, timedelta, timezone

    import time_machine

    from idp.extensions import db
    from idp.models import Session, utcnow

    session_id = flow.sign_in(user)
    tokens = flow.tokens(scope="openid offline_access")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(minutes=20)):
        assert client.get("/oauth2/userinfo", headers=bearer).status_code == 200
    with app.app_context():
        db.session.get(Session, session_id).revoke(utcnow())
        db.session.commit()
    assert client.get("/oauth2/userinfo", headers=bearer).status_code == 401
    assert flow.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_userinfo_refuses_a_token_minted_for_the_management_api(app, client, factories, user):
    """RFC 9068 4: a resource server refuses an access token whose `aud` does not name it. A token
    granted a management scope has aud = API_AUDIENCE only, so UserInfo (the issuer's resource)
    answers 401 invalid_token even though the token also carries `openid`."""
    from tests.oidc.conftest import REDIRECT_URI, Flow

    rp = factories.client(redirect_uris=[REDIRECT_URI], first_party=True, scope="openid manage:organizations",
                          grant_types=["authorization_code"])
    flow = Flow(app, client, rp)
    flow.sign_in(user)
    token = flow.tokens(scope="openid manage:organizations")["access_token"]
    response = client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and 'error="invalid_token"' in response.headers["WWW-Authenticate"]
