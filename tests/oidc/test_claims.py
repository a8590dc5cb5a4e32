"""The claims request parameter (OIDC Core 5.5) and scope claims (5.4)."""
import json

from joserfc import jwt


def decode(app, token):
    with app.app_context():
        return jwt.decode(token, app.extensions["oidc"]["keys"].verification_keyset()).claims


def test_id_token_carries_claims_requested_for_it(flow, user, app):
    """OIDC Core 5.5: claims.id_token members (essential or voluntary) appear in the ID token."""
    flow.sign_in(user)
    claims = json.dumps({"id_token": {"email": {"essential": True}, "given_name": None}})
    id_token = decode(app, flow.tokens(scope="openid", claims=claims)["id_token"])
    assert id_token["email"] == user.email and id_token["given_name"] == "Ada"
    assert "family_name" not in id_token


PROTOCOL_CLAIMS = {"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash"}


def minimal_flow(app, client, factories):
    """A flow for a first-party client whose policy keeps the ID token minimal."""
    from tests.oidc.conftest import REDIRECT_URI, Flow

    rp = factories.client(redirect_uris=[REDIRECT_URI], first_party=True, minimal_id_token=True,
                          scope="openid profile email phone")
    return Flow(app, client, rp)


def test_id_token_carries_the_granted_scope_claims_by_default(flow, user, app):
    """OIDC Core 5.4 allows the scope claims in the ID token; by default they are there (as Google,
    Keycloak and Auth0 do), the same values UserInfo returns for those scopes."""
    flow.sign_in(user)
    id_token = decode(app, flow.tokens(scope="openid email profile")["id_token"])
    assert id_token["email"] == user.email and id_token["email_verified"] is user.email_verified
    assert id_token["name"] == user.name and id_token["given_name"] == "Ada" and id_token["family_name"] == "Lovelace"
    assert "phone_number" not in id_token and id_token["sub"] == user.subject


def test_minimal_id_token_client_gets_only_protocol_claims(app, client, factories, user):
    """OIDC Core 5.4: with an access token issued, scope claims may be left to UserInfo; a client
    flagged minimal_id_token gets only `sub` and the protocol claims (OIDC Core 2)."""
    flow = minimal_flow(app, client, factories)
    flow.sign_in(user)
    id_token = decode(app, flow.tokens(scope="openid email profile")["id_token"])
    assert set(id_token) <= PROTOCOL_CLAIMS and id_token["sub"] == user.subject


def test_minimal_id_token_client_still_gets_claims_requested_for_it(app, client, factories, user):
    """OIDC Core 5.5: claims.id_token is honoured for a minimal-ID-token client too."""
    flow = minimal_flow(app, client, factories)
    flow.sign_in(user)
    claims = json.dumps({"id_token": {"email": None}})
    id_token = decode(app, flow.tokens(scope="openid profile", claims=claims)["id_token"])
    assert id_token["email"] == user.email and "name" not in id_token and "given_name" not in id_token


def test_userinfo_honours_claims_userinfo(flow, user, client):
    """OIDC Core 5.5: claims.userinfo adds individual claims beyond the scopes."""
    flow.sign_in(user)
    claims = json.dumps({"userinfo": {"family_name": {"essential": True}, "phone_number": None}})
    token = flow.tokens(scope="openid", claims=claims)["access_token"]
    body = client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert body["family_name"] == "Lovelace" and body["phone_number"] == "+441234567890"
    assert "email" not in body


def test_absent_values_are_omitted_not_null(flow, user, client):
    """OIDC Core 5.3.2: claims without a value are omitted rather than null."""
    flow.sign_in(user)
    token = flow.tokens(scope="openid address profile")["access_token"]
    body = client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert "address" not in body and "picture" not in body and None not in body.values()


def test_malformed_claims_parameter_is_invalid_request(flow, user):
    """OIDC Core 5.5: a claims value that is not a JSON object is invalid_request."""
    from tests.oidc.conftest import query_of

    flow.sign_in(user)
    for bad in ("{not json", '["email"]', '{"userinfo": 3}'):
        assert query_of(flow.authorize(claims=bad).headers["Location"])["error"] == "invalid_request", bad


def test_unmeetable_essential_acr_fails_the_authentication(flow, user):
    """OIDC Core 5.5.1.1: an essential `acr` whose values the sign-in cannot meet is a failed
    authentication, answered with unmet_authentication_requirements (OpenID Connect Core Unmet
    Authentication Requirements 1.0, 2) at the redirect URI, with state and iss, and no code."""
    from tests.oidc.conftest import query_of

    flow.sign_in(user)
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["urn:example:loa:mfa"]}}})
    answer = query_of(flow.authorize(claims=claims, state="s-1").headers["Location"])
    assert answer["error"] == "unmet_authentication_requirements"
    assert answer["state"] == "s-1" and "iss" in answer and "code" not in answer


def test_meetable_essential_acr_and_voluntary_acr_values_issue_tokens(flow, user, app):
    """OIDC Core 5.5.1.1 / 3.1.2.1: an essential acr the sign-in meets, or acr_values that are only
    voluntary, still sign the user in; the ID token states the acr actually achieved."""
    flow.sign_in(user)
    essential = json.dumps({"id_token": {"acr": {"essential": True, "value": "0"}}})
    assert decode(app, flow.tokens(scope="openid", claims=essential)["id_token"])["acr"] == "0"
    voluntary = json.dumps({"id_token": {"acr": {"values": ["urn:example:loa:mfa"]}}})
    tokens = flow.tokens(scope="openid", claims=voluntary, acr_values="urn:example:loa:mfa")
    assert decode(app, tokens["id_token"])["acr"] == "0"


def test_claims_sub_value_is_the_only_user_who_gets_tokens(flow, user, factories, app):
    """OIDC Core 5.5.1: with a `sub` value requested for the ID token, only that user gets a code;
    another signed-in user is sent to sign in (login_required under prompt=none), and a sign-in as
    someone else during the request ends in access_denied, never in their tokens."""
    from tests.oidc.conftest import query_of

    flow.sign_in(user)
    subject = decode(app, flow.tokens(scope="openid")["id_token"])["sub"]
    named = json.dumps({"id_token": {"sub": {"value": subject}}})
    other = factories.user()
    flow.sign_in(other)
    assert query_of(flow.authorize(claims=named, prompt="none").headers["Location"])["error"] == "login_required"
    request_id = query_of(flow.authorize(claims=named).headers["Location"])["request"]
    flow.sign_in(other)
    refused = query_of(flow.client.get(f"/oauth2/authorize/resume/{request_id}").headers["Location"])
    assert refused["error"] == "access_denied" and refused["state"] == "st-123" and "code" not in refused
    request_id = query_of(flow.authorize(claims=named).headers["Location"])["request"]
    flow.sign_in(user)
    assert "code" in query_of(flow.client.get(f"/oauth2/authorize/resume/{request_id}").headers["Location"])
