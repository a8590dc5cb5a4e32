"""The request parameter (OIDC Core 6.1): unsigned and signed request objects; request_uri refused."""
import base64
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.oidc.conftest import REDIRECT_URI, query_of


def unsigned(claims: dict) -> str:
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none'})}.{part(claims)}."


@pytest.fixture
def rp_key():
    return RSAKey.generate_key(2048, private=True, parameters={"kid": "rp-sig"})


def test_unsigned_request_object_overrides_query_parameters(flow, user):
    """OIDC Core 6.1/6.3.3: request object members are used in place of the query's (state here)."""
    flow.sign_in(user)
    params = flow.authorize_params()
    inner = {k: params[k] for k in ("response_type", "client_id", "redirect_uri", "scope", "code_challenge",
                                   "code_challenge_method")}
    inner["state"] = "from-object"
    response = flow.authorize(request=unsigned(inner), state="from-query",
                              code_challenge=params["code_challenge"])
    query = query_of(response.headers["Location"])
    assert query["state"] == "from-object" and query["code"]


def test_signed_request_object_with_client_key(flow, user, factories, rp_key, app):
    """OIDC Core 6.1: a request object signed with the client's registered key is accepted."""
    flow.rp = factories.client(redirect_uris=[REDIRECT_URI], first_party=True,
                               jwks={"keys": [rp_key.as_dict(private=False)]})
    flow.sign_in(user)
    params = flow.authorize_params()
    claims = {**params, "iss": flow.rp.client_id, "aud": app.config["ISSUER"], "exp": int(time.time()) + 60,
              "nonce": "signed-nonce"}
    token = jwt.encode({"alg": "RS256", "kid": "rp-sig"}, claims, rp_key)
    response = flow.client.get("/oauth2/authorize", query_string={
        "response_type": "code", "client_id": flow.rp.client_id, "scope": "openid", "request": token,
        "redirect_uri": REDIRECT_URI})
    assert "code" in query_of(response.headers["Location"])


def test_tampered_or_foreign_signature_is_invalid_request_object(flow, user, factories, rp_key, app):
    """OIDC Core 6.3.2: a request object whose signature does not verify -> invalid_request_object."""
    flow.rp = factories.client(redirect_uris=[REDIRECT_URI], jwks={"keys": [rp_key.as_dict(private=False)]})
    stranger = RSAKey.generate_key(2048, private=True, parameters={"kid": "rp-sig"})
    token = jwt.encode({"alg": "RS256", "kid": "rp-sig"}, {**flow.authorize_params(), "iss": flow.rp.client_id}, stranger)
    response = flow.authorize(request=token)
    query = query_of(response.headers["Location"])
    assert query["error"] == "invalid_request_object" and query["state"] == "st-123" and "iss" in query


def test_request_object_client_id_mismatch_is_refused(flow, user):
    """OIDC Core 6.1: client_id in the object must match the query's."""
    flow.sign_in(user)
    response = flow.authorize(request=unsigned({"client_id": "someone-else", "response_type": "code"}))
    assert query_of(response.headers["Location"])["error"] == "invalid_request_object"


def test_request_uri_is_not_supported(flow, user):
    """OIDC Core 6.2: request_uri is not supported and says so (request_uri_not_supported)."""
    response = flow.authorize(request_uri="https://rp.example/req.jwt")
    assert query_of(response.headers["Location"])["error"] == "request_uri_not_supported"


def test_garbage_request_object_with_bad_redirect_shows_page(flow):
    """RFC 6749 4.1.2.1: with no trustworthy redirect URI even a request-object error is an HTML page."""
    response = flow.authorize(request="not-a-jwt", redirect_uri="https://evil.example/")
    assert response.status_code == 400 and "Location" not in response.headers
