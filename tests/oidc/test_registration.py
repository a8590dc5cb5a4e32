"""Dynamic registration (RFC 7591) behind an initial access token, and RFC 7592 management."""
import pytest

METADATA = {"client_name": "Dyn App", "redirect_uris": ["https://dyn.example/cb"],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "scope": "openid profile offline_access", "post_logout_redirect_uris": ["https://dyn.example/bye"]}


@pytest.fixture
def initial_token(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["clients", "initial-token"])
    assert result.exit_code == 0
    return result.output.strip()


def register(client, token=None, **overrides):
    """POST METADATA with `overrides` (a None override leaves that member out)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {name: value for name, value in {**METADATA, **overrides}.items() if value is not None}
    return client.post("/oauth2/register", json=body, headers=headers)


def assert_bearer_challenge(response, error: str | None):
    """RFC 6750 3: 401 with a Bearer challenge; `error` in the header and body only when a token was sent."""
    challenge = response.headers["WWW-Authenticate"]
    body = response.get_json()
    assert response.status_code == 401 and challenge.startswith("Bearer ")
    assert body.get("error") == error and (f'error="{error}"' in challenge if error else "error" not in challenge)
    return body


def test_registration_without_a_token_gets_the_bearer_challenge(client):
    """RFC 7591 3 (the initial access token is a bearer token), RFC 6750 3.1: a request without
    credentials gets 401 and a Bearer challenge without an error code; the body says what is needed."""
    body = assert_bearer_challenge(register(client), None)
    assert "initial access token" in body["error_description"]
    assert "flask clients initial-token" in body["error_description"]


def test_registration_with_a_bad_initial_token_is_invalid_token(client):
    """RFC 6750 3.1: an unknown, expired or used initial access token is 401 invalid_token."""
    response = register(client, "bogus")
    body = assert_bearer_challenge(response, "invalid_token")
    assert "flask clients initial-token" in body["error_description"]
    assert 'error_description="' in response.headers["WWW-Authenticate"]


def test_registration_with_token_creates_working_client(client, initial_token, app):
    """RFC 7591 3.2.1: 201 with client_id, secret, metadata and RFC 7592 registration credentials."""
    response = register(client, initial_token)
    body = response.get_json()
    assert response.status_code == 201 and body["client_id"].startswith("dyn-") and body["client_secret"]
    assert body["redirect_uris"] == METADATA["redirect_uris"] and body["client_secret_expires_at"] == 0
    assert body["registration_client_uri"].endswith(f"/oauth2/register/{body['client_id']}")
    assert body["registration_access_token"]
    token = client.post("/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": "x"},
                        auth=(body["client_id"], body["client_secret"]))
    assert token.get_json()["error"] == "invalid_grant"  # authenticated, then the bad refresh token refused
    assert_bearer_challenge(register(client, initial_token), "invalid_token")  # single use


def test_invalid_metadata_is_refused(client, initial_token):
    """RFC 7591 3.2.2: unsupported values -> invalid_client_metadata (or invalid_redirect_uri)."""
    assert register(client, initial_token, scope="openid wizardry").get_json()["error"] == "invalid_client_metadata"
    assert register(client, initial_token, redirect_uris=[]).status_code == 400


def test_open_registration_when_enabled(make_app):
    """OPEN_CLIENT_REGISTRATION=true allows registration without a token."""
    other = make_app(OPEN_CLIENT_REGISTRATION=True)
    assert register(other.test_client()).status_code == 201


def test_read_update_delete_with_registration_access_token(client, initial_token):
    """RFC 7592 2.1-2.3: read, update and delete with the registration access token."""
    body = register(client, initial_token).get_json()
    path = f"/oauth2/register/{body['client_id']}"
    auth = {"Authorization": f"Bearer {body['registration_access_token']}"}
    read = client.get(path, headers=auth)
    assert read.status_code == 200 and read.get_json()["client_name"] == "Dyn App"
    assert_bearer_challenge(client.get(path, headers={"Authorization": "Bearer wrong"}), "invalid_token")
    update = client.put(path, headers=auth, json={**METADATA, "client_id": body["client_id"], "client_name": "Renamed"})
    assert update.status_code == 200 and update.get_json()["client_name"] == "Renamed"
    assert client.delete(path, headers=auth).status_code == 204
    assert_bearer_challenge(client.get(path, headers=auth), "invalid_token")  # RFC 7592 2.3: token gone
    token = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                        auth=(body["client_id"], body["client_secret"]))
    assert token.status_code == 401


@pytest.mark.parametrize("body", [[1, 2], "text", {"redirect_uris": "x"},
                                  {"redirect_uris": ["https://a.example/cb"], "client_name": "n" * 500},
                                  {"redirect_uris": ["https://a.example/" + "p" * 600]},
                                  {"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}])
def test_malformed_registration_is_invalid_client_metadata(client, initial_token, body):
    """RFC 7591 3.2.2: a body that is not valid client metadata is a 400 invalid_client_metadata."""
    response = client.post("/oauth2/register", json=body, headers={"Authorization": f"Bearer {initial_token}"})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_client_metadata"


def test_platform_admin_api_token_may_register_but_not_a_member(client, factories, app):
    """Admin-only use: a platform admin's API session token registers a client; a member's does not."""
    from idp.extensions import db
    from idp.models import User
    from idp.services.sessions import create_session

    admin, member = factories.user(is_admin=True), factories.user()
    with app.app_context():
        _, admin_token = create_session(db.session.get(User, admin.id))
        _, member_token = create_session(db.session.get(User, member.id))
        db.session.commit()
    assert_bearer_challenge(register(client, member_token), "invalid_token")  # not an initial access token
    assert register(client, admin_token).status_code == 201


def test_policy_and_tos_uris_are_stored_and_returned(client, initial_token):
    """RFC 7591 2 and 3.2.1, RFC 7592 2.1-2.2: policy_uri and tos_uri come back on registration, read
    and update; an RP sees the privacy policy and terms it registered, and an update that omits
    them removes them."""
    uris = {"policy_uri": "https://dyn.example/privacy", "tos_uri": "https://dyn.example/terms"}
    body = register(client, initial_token, **uris).get_json()
    assert {name: body.get(name) for name in uris} == uris
    path = f"/oauth2/register/{body['client_id']}"
    auth = {"Authorization": f"Bearer {body['registration_access_token']}"}
    assert {name: client.get(path, headers=auth).get_json().get(name) for name in uris} == uris
    changed = {"policy_uri": "http://dyn.example/privacy-v2", "tos_uri": "https://dyn.example/terms-v2"}
    update = client.put(path, headers=auth, json={**METADATA, "client_id": body["client_id"], **changed})
    assert update.status_code == 200 and {name: update.get_json().get(name) for name in uris} == changed
    assert {name: client.get(path, headers=auth).get_json().get(name) for name in uris} == changed
    cleared = client.put(path, headers=auth, json={**METADATA, "client_id": body["client_id"]})
    assert cleared.status_code == 200 and not set(uris) & set(client.get(path, headers=auth).get_json())


@pytest.mark.parametrize("name", ["policy_uri", "tos_uri", "client_uri"])
@pytest.mark.parametrize("value", ["javascript:alert(1)", "/privacy", "privacy.html", "javascript://dyn.example/%0aalert(1)",
                                   "ftp://dyn.example/privacy", "https://dyn.example/pri vacy", "https:///privacy", 5,
                                   ["https://dyn.example/privacy"], "https://dyn.example/" + "p" * 500])
def test_web_page_uri_must_be_http_url(client, initial_token, name, value):
    """RFC 7591 2 and 3.2.2: policy_uri, tos_uri and client_uri are web pages an end user is sent to;
    a javascript:, relative, non-http(s), malformed or over-long value is a 400 invalid_client_metadata
    and no client is made."""
    response = register(client, initial_token, **{name: value})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_client_metadata"
    assert register(client, initial_token).status_code == 201  # the initial access token was not used up


def test_update_with_javascript_policy_uri_is_refused(client, initial_token):
    """RFC 7592 2.2 and RFC 7591 3.2.2: an update naming a javascript: policy_uri is refused with
    invalid_client_metadata, and the registered policy_uri stays as it was."""
    body = register(client, initial_token, policy_uri="https://dyn.example/privacy").get_json()
    path = f"/oauth2/register/{body['client_id']}"
    auth = {"Authorization": f"Bearer {body['registration_access_token']}"}
    update = client.put(path, headers=auth, json={**METADATA, "client_id": body["client_id"],
                                                   "policy_uri": "javascript:alert(1)"})
    assert update.status_code == 400 and update.get_json()["error"] == "invalid_client_metadata"
    assert client.get(path, headers=auth).get_json()["policy_uri"] == "https://dyn.example/privacy"


@pytest.mark.parametrize("name", ["logo_uri", "jwks_uri"])
@pytest.mark.parametrize("value", [5, ["https://dyn.example/logo.png"], "javascript:alert(1)", "data:image/png;base64,AA"])
def test_logo_and_jwks_uri_must_be_http_urls(client, initial_token, name, value):
    """RFC 7591 2 and 3.2.2: logo_uri and jwks_uri are URLs; a non-string or non-http(s) value is a
    400 invalid_client_metadata, never a server error."""
    response = register(client, initial_token, **{name: value})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_client_metadata"


STANDARD_SCOPES = "openid profile email phone address offline_access"


def test_registration_without_scope_gets_the_standard_scopes(client, initial_token):
    """OIDC Registration 1.0 has no `scope` member: a client registered without one may ask for the
    standard scopes (OIDC Core 5.4, 11), not `openid` alone; `organizations` must be asked for."""
    response = register(client, initial_token, scope=None)
    body = response.get_json()
    assert response.status_code == 201 and body["scope"] == STANDARD_SCOPES
    auth = {"Authorization": f"Bearer {body['registration_access_token']}"}
    assert client.get(f"/oauth2/register/{body['client_id']}", headers=auth).get_json()["scope"] == STANDARD_SCOPES


def test_registration_response_returns_every_registered_and_defaulted_member(client, initial_token):
    """RFC 7591 3.2.1: the response holds all registered metadata, including fields the server provisioned."""
    body = register(client, initial_token, scope=None, grant_types=None, response_types=None).get_json()
    assert body["grant_types"] == ["authorization_code"] and body["response_types"] == ["code"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["id_token_signed_response_alg"] == "RS256"
    assert body["redirect_uris"] == METADATA["redirect_uris"] and body["client_name"] == "Dyn App"
    assert body["post_logout_redirect_uris"] == METADATA["post_logout_redirect_uris"]
    assert body["scope"] == STANDARD_SCOPES and "client_id_issued_at" in body


def test_configuration_refusals_are_one_invalid_token_answer(client, initial_token):
    """RFC 7592 2.1: a token not valid for the client in the URL is 401 invalid_token (RFC 6750 3.1),
    the same whether that client exists, was deleted, or never did (no existence oracle)."""
    first, second = register(client, initial_token).get_json(), register(client, issue_token(client)).get_json()
    auth = {"Authorization": f"Bearer {first['registration_access_token']}"}
    other = assert_bearer_challenge(client.get(f"/oauth2/register/{second['client_id']}", headers=auth), "invalid_token")
    missing = assert_bearer_challenge(client.get("/oauth2/register/dyn-nobody", headers=auth), "invalid_token")
    assert other == missing
    assert client.get(f"/oauth2/register/{first['client_id']}", headers=auth).status_code == 200


def test_configuration_without_a_token_gets_the_bearer_challenge(client, initial_token):
    """RFC 7592 2, RFC 6750 3.1: no credentials -> 401, a Bearer challenge without an error code."""
    body = register(client, initial_token).get_json()
    refused = assert_bearer_challenge(client.get(f"/oauth2/register/{body['client_id']}"), None)
    assert "registration access token" in refused["error_description"]


def issue_token(client) -> str:
    """Another single-use initial access token, from the CLI."""
    result = client.application.test_cli_runner().invoke(args=["clients", "initial-token"])
    return result.output.strip()


def test_public_client_with_http_post_logout_uri_is_invalid_client_metadata(client, initial_token):
    """OIDC RP-Initiated Logout 1.0 3.1: post_logout_redirect_uris MAY be http only for confidential clients;
    a public client's is refused with 400 invalid_client_metadata (RFC 7591 3.2.2), never a 500. The same
    URI on a confidential client registers."""
    public = register(client, initial_token, token_endpoint_auth_method="none",
                      post_logout_redirect_uris=["http://rp.example/bye"])
    assert public.status_code == 400 and public.get_json()["error"] == "invalid_client_metadata"
    assert "post_logout_redirect_uris" in public.get_json()["error_description"]
    confidential = register(client, initial_token, post_logout_redirect_uris=["http://rp.example/bye"])
    assert confidential.status_code == 201
