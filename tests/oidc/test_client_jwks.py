"""Fetching clients' jwks_uri (OIDC Registration 2): no server-side request forgery, brief caching."""
import time
import uuid

import pytest
from flask import Flask, jsonify
from joserfc import jwt
from joserfc.jwk import RSAKey

from idp.oidc import client_jwks
from tests.servers import LiveServer

TOKEN_URL = "http://localhost:5000/oauth2/token"


class KeyHost:
    """A client's own key host on loopback, counting how often the IdP fetches from it."""

    def __init__(self, key):
        self.key, self.fetches = key, 0
        app = Flask("client-keys")
        app.add_url_rule("/jwks.json", "jwks", self.serve)
        self.server = LiveServer(app)

    def serve(self):
        self.fetches += 1
        return jsonify({"keys": [self.key.as_dict(private=False)]})


@pytest.fixture
def key_host():
    host = KeyHost(RSAKey.generate_key(2048, private=True, parameters={"kid": "k1"}))
    host.server.start()
    yield host
    host.server.stop()
    client_jwks.forget_jwks(f"{host.server.url}/jwks.json")


@pytest.fixture
def uri_client(factories, key_host):
    return factories.client(secret=None, token_endpoint_auth_method="private_key_jwt", scope="reports:read",
                            grant_types=["client_credentials"], jwks_uri=f"{key_host.server.url}/jwks.json")


def authenticate(client, rp, key):
    now = int(time.time())
    claims = {"iss": rp.client_id, "sub": rp.client_id, "aud": TOKEN_URL, "iat": now, "exp": now + 60,
              "jti": str(uuid.uuid4())}
    token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
    return client.post("/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": rp.client_id, "client_assertion": token,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})


def test_fetched_keys_are_reused(client, uri_client, key_host):
    """Repeated assertions within the cache life fetch the client's jwks_uri once."""
    for _ in range(3):
        assert authenticate(client, uri_client, key_host.key).status_code == 200
    assert key_host.fetches == 1


def test_rotated_client_keys_work_after_one_refusal(client, uri_client, key_host):
    """A signature the cached keys reject drops them, so the client's next attempt sees its new key."""
    assert authenticate(client, uri_client, key_host.key).status_code == 200
    key_host.key = RSAKey.generate_key(2048, private=True, parameters={"kid": "k2"})
    refused = authenticate(client, uri_client, key_host.key)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_client"
    assert authenticate(client, uri_client, key_host.key).status_code == 200


def test_internal_jwks_uri_is_not_fetched_in_production_mode(make_app, uri_client, key_host):
    """SSRF guard: with ALLOW_PRIVATE_JWKS_URI off, an http or loopback jwks_uri is never requested."""
    guarded = make_app(ALLOW_PRIVATE_JWKS_URI=False).test_client()
    response = authenticate(guarded, uri_client, key_host.key)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_client"
    assert key_host.fetches == 0


@pytest.mark.parametrize("uri", ["https://127.0.0.1/jwks.json", "https://10.0.0.8/keys", "https://[::1]/k",
                                 "https://169.254.169.254/latest", "file:///etc/passwd", "ftp://example.com/k"])
def test_non_public_or_non_https_uris_are_refused(make_app, uri):
    """SSRF guard: loopback, private, link-local addresses and non-https schemes are refused before any request."""
    guarded = make_app(ALLOW_PRIVATE_JWKS_URI=False)
    with guarded.app_context(), pytest.raises(client_jwks.JwksFetchError):
        client_jwks.check_jwks_uri(uri)
