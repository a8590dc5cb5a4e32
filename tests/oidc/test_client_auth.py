"""Client authentication at the token endpoint (RFC 6749 2.3, 5.2; RFC 7523; OIDC Core 9)."""
import time
import uuid

import pytest
from flask import Flask, jsonify
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.oidc.conftest import basic_auth
from tests.servers import LiveServer

TOKEN_URL = "http://localhost:5000/oauth2/token"


def cc(client, headers=None, **data):
    return client.post("/oauth2/token", data={"grant_type": "client_credentials", **data}, headers=headers or {})


def test_wrong_basic_secret_is_401_with_www_authenticate(client, rp):
    """RFC 6749 5.2: invalid_client over HTTP Basic -> 401 and a WWW-Authenticate: Basic header."""
    response = cc(client, basic_auth(rp.client_id, "wrong"))
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_unknown_client_over_basic_is_401(client):
    """RFC 6749 5.2: an unknown client is invalid_client as well."""
    response = cc(client, basic_auth("ghost", "x"))
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers


def test_client_secret_post_works_when_registered(client, factories):
    """RFC 6749 2.3.1: client_secret_post for a client registered with that method."""
    rp = factories.client(token_endpoint_auth_method="client_secret_post", grant_types=["client_credentials"])
    ok = cc(client, client_id=rp.client_id, client_secret="s3cret-client-secret")
    assert ok.status_code == 200
    wrong = cc(client, client_id=rp.client_id, client_secret="nope")
    assert wrong.get_json()["error"] == "invalid_client"


def test_method_must_match_the_registered_one(client, rp):
    """OIDC Registration 2: a basic client cannot authenticate with client_secret_post."""
    response = cc(client, client_id=rp.client_id, client_secret="s3cret-client-secret")
    assert response.get_json()["error"] == "invalid_client"


def test_inactive_client_cannot_authenticate(client, factories):
    """A deactivated client is unknown to the token endpoint."""
    rp = factories.client(grant_types=["client_credentials"], is_active=False)
    assert cc(client, basic_auth(rp.client_id)).status_code == 401


@pytest.fixture
def signing_key():
    return RSAKey.generate_key(2048, private=True, parameters={"kid": "rp-key-1"})


def assertion(client_id: str, key, audience: str = TOKEN_URL, jti: str | None = None, **extra) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 60,
              "jti": jti or str(uuid.uuid4()), **extra}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def pkjwt(client, client_id, token):
    return cc(client, client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
              client_assertion=token, client_id=client_id)


@pytest.fixture
def jwt_client(factories, signing_key):
    return factories.client(secret=None, token_endpoint_auth_method="private_key_jwt",
                            grant_types=["client_credentials"], scope="reports:read",
                            jwks={"keys": [signing_key.as_dict(private=False)]})


def test_private_key_jwt_authenticates(client, jwt_client, signing_key):
    """RFC 7523 2.2 / OIDC Core 9: a JWT signed with the client's registered key authenticates it."""
    response = pkjwt(client, jwt_client.client_id, assertion(jwt_client.client_id, signing_key))
    assert response.status_code == 200, response.get_json()


def test_private_key_jwt_jti_replay_is_refused(client, jwt_client, signing_key):
    """RFC 7523 3 (7): a reused assertion jti is refused."""
    token = assertion(jwt_client.client_id, signing_key, jti="once-only")
    assert pkjwt(client, jwt_client.client_id, token).status_code == 200
    replay = pkjwt(client, jwt_client.client_id, token)
    assert replay.status_code in (400, 401) and replay.get_json()["error"] == "invalid_client"


def test_private_key_jwt_wrong_key_or_audience_is_refused(client, jwt_client, signing_key):
    """RFC 7523 3: a foreign signature or an audience that is not this server is invalid_client."""
    stranger = RSAKey.generate_key(2048, private=True, parameters={"kid": "rp-key-1"})
    assert pkjwt(client, jwt_client.client_id, assertion(jwt_client.client_id, stranger)).get_json()["error"] == "invalid_client"
    bad_aud = assertion(jwt_client.client_id, signing_key, audience="https://elsewhere.example/token")
    assert pkjwt(client, jwt_client.client_id, bad_aud).get_json()["error"] == "invalid_client"


def test_private_key_jwt_expired_assertion_is_refused(client, jwt_client, signing_key):
    """RFC 7523 3 (4): an expired assertion is refused."""
    token = assertion(jwt_client.client_id, signing_key, exp=int(time.time()) - 600)
    assert pkjwt(client, jwt_client.client_id, token).get_json()["error"] == "invalid_client"


def test_private_key_jwt_keys_from_jwks_uri(client, factories, signing_key):
    """OIDC Registration 2: the client's keys may come from its jwks_uri."""
    keys_app = Flask("client-keys")
    keys_app.add_url_rule("/jwks.json", "jwks", lambda: jsonify({"keys": [signing_key.as_dict(private=False)]}))
    server = LiveServer(keys_app)
    server.start()
    try:
        rp = factories.client(secret=None, token_endpoint_auth_method="private_key_jwt", scope="reports:read",
                              grant_types=["client_credentials"], jwks_uri=server.url + "/jwks.json")
        assert pkjwt(client, rp.client_id, assertion(rp.client_id, signing_key)).status_code == 200
    finally:
        server.stop()


def test_refused_client_authentication_is_audited(client, rp, app):
    """Security events: a refused token request leaves a failure audit naming client and error, no secret."""
    from idp.models import AuditEvent

    cc(client, basic_auth(rp.client_id, "wrong-secret"))
    with app.app_context():
        event = AuditEvent.query.filter_by(action="oauth.request_refused").one()
        assert event.outcome == "failure" and event.details["error"] == "invalid_client"
        assert event.target_id == rp.client_id
        assert "wrong-secret" not in str(event.details)
