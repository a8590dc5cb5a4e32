"""/api/v1/keys: signing keys for platform admins, with the rules of `flask keys` (RFC 7517 JWKS,
RFC 9068 access tokens), on an app with its own KEYS_DIR so no other test sees these keys."""
from __future__ import annotations

import base64
import errno

import pytest
from joserfc import jwt
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, Role
from idp.services.signing_keys import KeyStore
from tests.api.envelope_assertions import assert_error, assert_success
from tests.api.service_accounts import SECRET, service_token


@pytest.fixture
def keys_app(make_app, tmp_path):
    """An app whose KEYS_DIR is this test's own (testing profile: an RS256 and an ES256 key, active)."""
    return make_app(KEYS_DIR=str(tmp_path / "keys"))


@pytest.fixture
def api(keys_app):
    return keys_app.test_client()


@pytest.fixture
def store(keys_app) -> KeyStore:
    return keys_app.extensions["oidc"]["keys"]


@pytest.fixture
def admin_headers(factories, auth_headers, keys_app):
    return auth_headers(factories.user(is_admin=True), keys_app)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def jwks_kids(api) -> set[str]:
    return {key["kid"] for key in api.get("/oauth2/jwks").get_json()["keys"]}


def audit_events(keys_app, action: str) -> list[AuditEvent]:
    with keys_app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_platform_admin_lists_keys_with_state_dates_and_publication(api, admin_headers, store):
    """Each key shows kid, alg, state, its dates and whether the JWKS publishes it; no key material."""
    body = assert_success(api.get("/api/v1/keys", headers=admin_headers))
    by_alg = {key["alg"]: key for key in body["data"]}
    assert set(by_alg) == {"RS256", "ES256"}
    rs256 = by_alg["RS256"]
    assert rs256["kid"] == store.signing_key("RS256").kid and rs256["state"] == "active"
    assert rs256["published"] is True and rs256["activated_at"] and rs256["retired_at"] is None
    assert set(rs256) == {"kid", "alg", "state", "created_at", "activated_at", "retired_at", "published",
                          "published_until"}
    assert body["meta"] == {"pagination": {"next_cursor": None, "limit": 50}}


def test_list_pages_by_cursor_newest_first_each_key_once(api, admin_headers, store):
    """limit and cursor as on every list: every key exactly once, newest first, null cursor at the end."""
    for _ in range(3):
        store.generate("RS256")
    expected = sorted(store.keys(), key=lambda k: (k.created_at, k.kid), reverse=True)
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = assert_success(api.get("/api/v1/keys", query_string=query, headers=admin_headers))
        seen += [key["kid"] for key in body["data"]]
        cursor = body["meta"]["pagination"]["next_cursor"]
        if cursor is None:
            break
    assert seen == [key.kid for key in expected] and len(seen) == 5


@pytest.mark.parametrize("query, field", [({"cursor": "no-such-kid"}, "cursor"), ({"limit": 0}, "limit"),
                                          ({"limit": 201}, "limit"), ({"state": "active"}, "state")])
def test_list_refuses_a_bad_cursor_limit_or_unknown_parameter(api, admin_headers, query, field):
    """A cursor that is no kid of the list, a limit outside 1..200 or an unknown parameter is a 422 naming it."""
    body = assert_error(api.get("/api/v1/keys", query_string=query, headers=admin_headers), 422, "VALIDATION_ERROR")
    assert field in str(body["error"]["details"])


def test_get_one_key_by_kid(api, admin_headers, store):
    """GET /api/v1/keys/<kid> answers that key; an unknown kid is a 404."""
    kid = store.signing_key("ES256").kid
    assert assert_success(api.get(f"/api/v1/keys/{kid}", headers=admin_headers))["data"]["alg"] == "ES256"
    assert_error(api.get("/api/v1/keys/rs256-unknown", headers=admin_headers), 404, "NOT_FOUND")


def test_without_a_token_every_operation_is_a_401_with_a_bearer_challenge(api, store):
    """RFC 6750 3.1: no credentials, 401 and WWW-Authenticate: Bearer."""
    kid = store.signing_key("RS256").kid
    for method, path in [("GET", "/api/v1/keys"), ("POST", "/api/v1/keys"), ("POST", "/api/v1/keys/rotate"),
                         ("GET", f"/api/v1/keys/{kid}"), ("POST", f"/api/v1/keys/{kid}/retire")]:
        response = api.open(path, method=method, json={} if method == "POST" else None)
        assert_error(response, 401, "UNAUTHORIZED")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_users_who_are_not_platform_admins_are_refused(api, factories, auth_headers, keys_app):
    """An organization's owner, admin or member, and any other user, get 403 on every operation."""
    organization = factories.organization()
    for role in (Role.OWNER, Role.ADMIN, Role.MEMBER):
        user = factories.user()
        factories.membership(organization, user, role)
        headers = auth_headers(user, keys_app)
        assert_error(api.get("/api/v1/keys", headers=headers), 403, "FORBIDDEN")
        assert_error(api.post("/api/v1/keys", json={"alg": "RS256"}, headers=headers), 403, "FORBIDDEN")
        assert_error(api.post("/api/v1/keys/rotate", json={}, headers=headers), 403, "FORBIDDEN")
    assert audit_events(keys_app, "key.generated") == [] and audit_events(keys_app, "key.rotated") == []


def test_platform_wide_service_account_with_manage_keys_may_manage_keys(api, factories, keys_app):
    """A client_credentials token of a platform-wide client granted manage:keys acts as a platform admin;
    its changes are audited with its client_id."""
    token = service_token(api, factories, "manage:keys")
    assert_success(api.get("/api/v1/keys", headers=bearer(token)))
    body = assert_success(api.post("/api/v1/keys", json={"alg": "ES256"}, headers=bearer(token)), 201)
    (event,) = audit_events(keys_app, "key.generated")
    assert event.actor_user_id is None and event.details["kid"] == body["data"]["kid"]
    assert event.details["actor_client_id"].startswith("client-")


def test_service_accounts_without_the_scope_or_of_an_organization_are_refused(api, factories):
    """A token without manage:keys is a 403 insufficient_scope; an organization's service account is no
    platform admin, whatever its scopes."""
    other_scope = service_token(api, factories, "manage:clients")
    response = api.get("/api/v1/keys", headers=bearer(other_scope))
    assert_error(response, 403, "FORBIDDEN")
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    organization = factories.organization()
    scoped = service_token(api, factories, "manage:keys", organization_id=organization.id)
    assert_error(api.get("/api/v1/keys", headers=bearer(scoped)), 403, "FORBIDDEN")


def test_a_token_for_another_audience_is_refused(api, factories):
    """RFC 9068 4: an access token whose aud is not the API (a client_credentials token without a management
    scope is for the issuer) is a 401 on the API."""
    client = factories.client(grant_types=["client_credentials"], redirect_uris=[], scope="reports")
    basic = base64.b64encode(f"{client.client_id}:{SECRET}".encode()).decode()
    token = api.post("/oauth2/token", data={"grant_type": "client_credentials"},
                     headers={"Authorization": f"Basic {basic}"}).get_json()["access_token"]
    assert_error(api.get("/api/v1/keys", headers=bearer(token)), 401, "UNAUTHORIZED")


def test_generate_publishes_a_next_key_that_signs_nothing(api, admin_headers, store, keys_app):
    """POST /api/v1/keys: state next, in /oauth2/jwks at once, the active key keeps signing; audited."""
    signing = store.signing_key("RS256").kid
    body = assert_success(api.post("/api/v1/keys", json={"alg": "RS256"}, headers=admin_headers), 201)
    key = body["data"]
    assert key["state"] == "next" and key["alg"] == "RS256" and key["published"] is True
    assert key["kid"] in jwks_kids(api) and store.signing_key("RS256").kid == signing
    (event,) = audit_events(keys_app, "key.generated")
    assert event.target_type == "signing_key" and event.target_id == key["kid"]
    assert event.details == {"kid": key["kid"], "alg": "RS256"} and event.actor_user_id is not None


def test_generate_defaults_to_rs256(api, admin_headers):
    """Like `flask keys generate`, the algorithm defaults to RS256."""
    assert assert_success(api.post("/api/v1/keys", json={}, headers=admin_headers), 201)["data"]["alg"] == "RS256"


@pytest.mark.parametrize("path", ["/api/v1/keys", "/api/v1/keys/rotate"])
@pytest.mark.parametrize("body, field", [({"alg": "HS256"}, "alg"), ({"alg": "none"}, "alg"),
                                         ({"alg": "RS256", "size": 4096}, "size")])
def test_unsupported_algorithms_and_unknown_fields_are_refused(api, admin_headers, store, path, body, field):
    """Only RS256 and ES256 keys exist; an unknown field is named (422), and nothing is written."""
    before = {key.kid for key in store.keys()}
    response = api.post(path, json=body, headers=admin_headers)
    assert field in assert_error(response, 422, "VALIDATION_ERROR")["error"]["details"]
    assert {key.kid for key in store.keys()} == before


def test_rotate_without_a_waiting_key_only_publishes_one(api, admin_headers, store):
    """Rotation never activates a key relying parties have not seen: with none waiting, it publishes one."""
    signing = store.signing_key("RS256").kid
    body = assert_success(api.post("/api/v1/keys/rotate", json={"alg": "RS256"}, headers=admin_headers))
    assert body["data"]["outcome"] == "published" and body["data"]["key"]["state"] == "next"
    assert body["data"]["retired"] == [] and store.signing_key("RS256").kid == signing


def test_rotate_activates_the_next_key_and_the_jwks_and_discovery_follow(api, admin_headers, store, keys_app):
    """After a rotation the new key signs new tokens; the old one is retired yet stays in the JWKS (RFC 7517)."""
    old = store.signing_key("RS256").kid
    new = assert_success(api.post("/api/v1/keys", json={"alg": "RS256"}, headers=admin_headers), 201)["data"]["kid"]
    body = assert_success(api.post("/api/v1/keys/rotate", json={"alg": "RS256"}, headers=admin_headers))
    assert body["data"]["outcome"] == "activated" and body["data"]["key"]["kid"] == new
    assert body["data"]["key"]["state"] == "active" and body["data"]["retired"] == [old]
    assert {old, new} <= jwks_kids(api) and store.signing_key("RS256").kid == new
    listed = {key["kid"]: key for key in assert_success(api.get("/api/v1/keys", headers=admin_headers))["data"]}
    assert listed[old]["state"] == "retired" and listed[old]["published"] is True and listed[old]["published_until"]
    assert "RS256" in api.get("/.well-known/openid-configuration").get_json()["id_token_signing_alg_values_supported"]
    (event,) = audit_events(keys_app, "key.rotated")
    assert event.details == {"kid": new, "alg": "RS256", "outcome": "activated", "retired": [old]}


def test_a_token_signed_before_a_rotation_still_works_while_its_key_is_published(api, factories, store):
    """RFC 9068 4: a service account's token signed by the old key is still accepted after the rotation it
    made, and a new token carries the new kid."""
    token = service_token(api, factories, "manage:keys")
    old = jwt.decode(token, store.verification_keyset()).header["kid"]
    assert_success(api.post("/api/v1/keys", json={"alg": "RS256"}, headers=bearer(token)), 201)
    assert_success(api.post("/api/v1/keys/rotate", json={"alg": "RS256"}, headers=bearer(token)))
    assert_success(api.get("/api/v1/keys", headers=bearer(token)))
    fresh = service_token(api, factories, "manage:keys")
    assert jwt.decode(fresh, store.verification_keyset()).header["kid"] == store.signing_key("RS256").kid != old


def test_a_rotation_through_one_node_is_served_by_every_node(api, admin_headers, make_app, keys_app):
    """Nodes sharing KEYS_DIR agree on the next request: each re-reads the keys when their metadata changes."""
    other_node = make_app(KEYS_DIR=keys_app.config["KEYS_DIR"]).test_client()
    new = assert_success(api.post("/api/v1/keys", json={"alg": "ES256"}, headers=admin_headers), 201)["data"]["kid"]
    assert new in jwks_kids(other_node)
    assert_success(api.post("/api/v1/keys/rotate", json={"alg": "ES256"}, headers=admin_headers))
    assert jwks_kids(other_node) == jwks_kids(api)


def test_retire_refuses_the_only_active_rs256_key(api, admin_headers, store, keys_app):
    """RS256 signs every access token: its only active key is not retired (409), and the refusal is audited."""
    kid = store.signing_key("RS256").kid
    body = assert_error(api.post(f"/api/v1/keys/{kid}/retire", headers=admin_headers), 409, "CONFLICT")
    assert "rotate first" in body["message"] and store.signing_key("RS256").kid == kid
    (event,) = audit_events(keys_app, "key.retired")
    assert event.outcome == "failure" and event.target_id == kid and event.details == {"reason": "last_active_key"}


def test_retire_refuses_the_only_key_of_an_algorithm_a_client_signs_with(api, admin_headers, store, factories):
    """A client registered with id_token_signed_response_alg ES256 (OIDC Registration 2) keeps its only
    ES256 key; once no client uses ES256 the key may go, as with `flask keys retire`."""
    kid = store.signing_key("ES256").kid
    es256_client = factories.client(id_token_signed_response_alg="ES256")
    assert_error(api.post(f"/api/v1/keys/{kid}/retire", headers=admin_headers), 409, "CONFLICT")
    with api.application.app_context():
        db.session.execute(db.delete(type(es256_client)).where(type(es256_client).id == es256_client.id))
        db.session.commit()
    body = assert_success(api.post(f"/api/v1/keys/{kid}/retire", headers=admin_headers))
    assert body["data"]["state"] == "retired" and store.signing_key("ES256") is None


def test_retire_stops_a_key_signing_and_keeps_it_published(api, admin_headers, store, keys_app):
    """Retiring a replaced key: it signs nothing and stays in the JWKS; retiring it again changes nothing."""
    old = store.signing_key("RS256").kid
    store.generate("RS256")
    _, promoted = store.rotate("RS256")
    waiting = store.generate("RS256")["kid"]
    body = assert_success(api.post(f"/api/v1/keys/{waiting}/retire", headers=admin_headers))
    assert body["data"]["state"] == "retired" and body["data"]["published"] is True and waiting in jwks_kids(api)
    assert store.signing_key("RS256").kid == promoted["kid"]
    assert_success(api.post(f"/api/v1/keys/{old}/retire", headers=admin_headers))
    (event,) = audit_events(keys_app, "key.retired")
    assert event.details == {"kid": waiting, "alg": "RS256", "previous_state": "next"}


def test_retire_an_unknown_kid_is_a_404(api, admin_headers):
    """No key with that kid: 404 NOT_FOUND."""
    assert_error(api.post("/api/v1/keys/rs256-20260101-deadbeef/retire", headers=admin_headers), 404, "NOT_FOUND")


def test_a_read_only_keys_dir_is_a_409_not_a_500(api, admin_headers, store, monkeypatch, keys_app):
    """Where KEYS_DIR is mounted read-only (docker-compose), a change is refused with a clear 409 and audited."""
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(KeyStore, "_write_entries", read_only)
    body = assert_error(api.post("/api/v1/keys", json={"alg": "RS256"}, headers=admin_headers), 409, "CONFLICT")
    assert "read-only" in body["message"]
    (event,) = audit_events(keys_app, "key.generated")
    assert event.outcome == "failure" and event.details == {"reason": "keys_dir_read_only"}


def test_cli_changes_are_audited_too(keys_app):
    """`flask keys generate` goes through the same audited operation as the API (actor: none)."""
    result = keys_app.test_cli_runner().invoke(args=["keys", "generate", "--alg", "ES256"])
    assert result.exit_code == 0, result.output
    (event,) = audit_events(keys_app, "key.generated")
    assert event.actor_user_id is None and event.details["alg"] == "ES256" and event.details["kid"] in result.output
