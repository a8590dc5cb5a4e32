"""The client_credentials grant (RFC 6749 4.4)."""
from tests.oidc.conftest import basic_auth


def post_token(client, rp, **data):
    return client.post("/oauth2/token", data={"grant_type": "client_credentials", **data}, headers=basic_auth(rp.client_id))


def test_client_credentials_issue_access_token_for_the_client(client, rp, app):
    """RFC 6749 4.4.3 + RFC 9068 2.2: an access token whose sub is the client; no refresh token."""
    from joserfc import jwt

    response = post_token(client, rp, scope="reports:read")
    body = response.get_json()
    assert response.status_code == 200 and "refresh_token" not in body and "id_token" not in body
    with app.app_context():
        keys = app.extensions["oidc"]["keys"].verification_keyset()
    claims = jwt.decode(body["access_token"], keys).claims
    assert claims["sub"] == rp.client_id == claims["client_id"] and claims["scope"] == "reports:read"


def test_client_credentials_refuse_user_scopes(client, rp):
    """RFC 6749 3.3: scopes about an end user are invalid_scope without one."""
    assert post_token(client, rp, scope="openid").get_json()["error"] == "invalid_scope"


def test_client_credentials_need_the_grant_type(client, factories):
    """RFC 6749 5.2: a client not allowed this grant gets unauthorized_client."""
    other = factories.client(grant_types=["authorization_code"])
    assert post_token(client, other).get_json()["error"] == "unauthorized_client"


def test_public_client_cannot_use_client_credentials(client, factories):
    """RFC 6749 4.4: only confidential clients may use this grant."""
    public = factories.client(secret=None, token_endpoint_auth_method="none", grant_types=["client_credentials"])
    response = client.post("/oauth2/token", data={"grant_type": "client_credentials", "client_id": public.client_id})
    assert response.status_code in (400, 401) and response.get_json()["error"] == "invalid_client"


def test_unknown_grant_type_is_unsupported(client, rp):
    """RFC 6749 5.2: unsupported_grant_type for a grant this server does not offer."""
    response = client.post("/oauth2/token", data={"grant_type": "password"}, headers=basic_auth(rp.client_id))
    assert response.status_code == 400 and response.get_json()["error"] == "unsupported_grant_type"


def introspect(client, rp, token):
    return client.post("/oauth2/introspect", data={"token": token}, headers=basic_auth(rp.client_id)).get_json()


def test_client_credentials_token_writes_nothing(client, rp, app):
    """The token hot path stores no row: a machine token is verified by signature until revoked."""
    from sqlalchemy import func, select

    from idp.extensions import db
    from idp.models import AccessToken, AuditEvent

    assert post_token(client, rp).status_code == 200
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AccessToken)) == 0
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_revoked_client_credentials_token_is_inactive(client, rp):
    """RFC 7009 2.1 + RFC 7662 2.2: once revoked, introspection reports the token inactive."""
    token = post_token(client, rp).get_json()["access_token"]
    body = introspect(client, rp, token)
    assert body["active"] is True and body["client_id"] == rp.client_id and body["sub"] == rp.client_id
    revoked = client.post("/oauth2/revoke", data={"token": token}, headers=basic_auth(rp.client_id))
    assert revoked.status_code == 200
    assert introspect(client, rp, token) == {"active": False}
    other = post_token(client, rp).get_json()["access_token"]
    assert introspect(client, rp, other)["active"] is True


def test_deactivated_client_tokens_are_inactive(client, rp, app):
    """RFC 7662 2.2: a token of a client that was switched off no longer verifies as a live token."""
    from idp.extensions import db
    from idp.models import OAuthClient
    from idp.oidc.bearer import find_access_token

    token = post_token(client, rp).get_json()["access_token"]
    assert introspect(client, rp, token)["active"] is True
    with app.test_request_context():
        db.session.get(OAuthClient, rp.id).is_active = False
        db.session.commit()
        assert find_access_token(token) is None
