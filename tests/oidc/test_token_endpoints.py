"""Introspection (RFC 7662) and revocation (RFC 7009)."""
from tests.oidc.conftest import basic_auth


def introspect(client, rp, token, **extra):
    return client.post("/oauth2/introspect", data={"token": token, **extra}, headers=basic_auth(rp.client_id))


def revoke(client, rp, token, **extra):
    return client.post("/oauth2/revoke", data={"token": token, **extra}, headers=basic_auth(rp.client_id))


def test_introspection_of_active_access_token(flow, user, client, rp):
    """RFC 7662 2.2: an active token reports active, scope, client_id, sub, exp, iat, token_type."""
    flow.sign_in(user)
    tokens = flow.tokens()
    body = introspect(client, rp, tokens["access_token"]).get_json()
    assert body["active"] is True and body["client_id"] == rp.client_id and body["sub"] == user.subject
    assert body["scope"] == "openid profile email" and body["token_type"] == "Bearer"
    assert {"exp", "iat", "iss", "jti"} <= set(body)


def test_introspection_of_refresh_token(flow, user, client, rp):
    """RFC 7662 2.1: refresh tokens can be introspected too (token_type_hint honoured)."""
    flow.sign_in(user)
    tokens = flow.tokens(scope="openid offline_access")
    body = introspect(client, rp, tokens["refresh_token"], token_type_hint="refresh_token").get_json()
    assert body["active"] is True and body["token_type"] == "refresh_token"


def test_introspection_inactive_for_unknown_foreign_or_revoked(flow, user, client, rp, factories):
    """RFC 7662 2.2: unknown, revoked, or another client's tokens answer only active=false."""
    flow.sign_in(user)
    tokens = flow.tokens()
    assert introspect(client, rp, "garbage").get_json() == {"active": False}
    other = factories.client()
    assert introspect(client, other, tokens["access_token"]).get_json() == {"active": False}
    revoke(client, rp, tokens["access_token"])
    assert introspect(client, rp, tokens["access_token"]).get_json() == {"active": False}


def test_introspection_requires_client_authentication(client, flow, user):
    """RFC 7662 2.1: the caller must authenticate; a wrong secret is 401."""
    flow.sign_in(user)
    token = flow.tokens()["access_token"]
    response = client.post("/oauth2/introspect", data={"token": token}, headers=basic_auth(flow.rp.client_id, "no"))
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    assert client.post("/oauth2/introspect", data={"token": token}).status_code in (400, 401)


def test_revoking_access_token_is_honoured_by_userinfo(flow, user, client, rp):
    """RFC 7009 2.1: a revoked access token stops working at once (userinfo answers 401)."""
    flow.sign_in(user)
    tokens = flow.tokens()
    response = revoke(client, rp, tokens["access_token"], token_type_hint="access_token")
    assert response.status_code == 200
    assert client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code == 401


def test_revoking_refresh_token_revokes_its_access_tokens(flow, user, client, rp):
    """RFC 7009 2.1: revoking a refresh token also invalidates access tokens of the same grant."""
    flow.sign_in(user)
    tokens = flow.tokens(scope="openid offline_access")
    assert revoke(client, rp, tokens["refresh_token"]).status_code == 200
    assert flow.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert introspect(client, rp, tokens["access_token"]).get_json() == {"active": False}


def test_revoking_unknown_token_is_200(client, rp):
    """RFC 7009 2.2: an invalid token still gets 200 (nothing to revoke)."""
    assert revoke(client, rp, "not-a-token").status_code == 200


def test_revocation_bad_hint_and_missing_token(client, rp):
    """RFC 7009 2.2.1: unsupported_token_type for an unknown hint; invalid_request without token."""
    assert revoke(client, rp, "x", token_type_hint="id_token").get_json()["error"] == "unsupported_token_type"
    response = client.post("/oauth2/revoke", data={}, headers=basic_auth(rp.client_id))
    assert response.get_json()["error"] == "invalid_request"


def test_wrong_method_on_token_endpoint_is_oauth_json(client):
    """RFC 6749 5.2 format even for a 405 on the token endpoint (never the API envelope)."""
    response = client.get("/oauth2/token")
    assert response.status_code == 405 and response.get_json()["error"] == "invalid_request"


def test_public_client_revokes_its_refresh_token_with_client_id(flow, factories):
    """RFC 7009 2.1: a public client identifies itself with client_id (auth method none) to revoke."""
    user = factories.user()
    flow.rp = factories.client(secret=None, token_endpoint_auth_method="none", first_party=True,
                               redirect_uris=["https://rp.example/callback"])
    flow.sign_in(user)
    code = flow.code(scope="openid offline_access")
    tokens = flow.client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": flow.rp.client_id,
        "redirect_uri": "https://rp.example/callback", "code_verifier": flow.verifier}).get_json()
    response = flow.client.post("/oauth2/revoke", data={"token": tokens["refresh_token"], "client_id": flow.rp.client_id})
    assert response.status_code == 200
    again = flow.client.post("/oauth2/token", data={"grant_type": "refresh_token", "client_id": flow.rp.client_id,
                                                    "refresh_token": tokens["refresh_token"]})
    assert again.get_json()["error"] == "invalid_grant"
