"""/api/v1/clients: RFC 7591 metadata through the management API, who may manage which client, the
one-time secret, rotation with a grace period, If-Match (RFC 9110 13.1.1) and the audit trail."""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, OAuthClient, Role
from tests.api.envelope_assertions import assert_error, assert_success
from tests.api.service_accounts import service_headers

RP = {"client_name": "Shop", "redirect_uris": ["https://shop.example/cb"],
      "grant_types": ["authorization_code", "refresh_token"], "scope": "openid profile offline_access"}
MACHINE = {"client_name": "Robot", "grant_types": ["client_credentials"], "scope": "openid"}


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def client_credentials(http, client_id: str, secret: str, scope: str | None = None):
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    return http.post("/oauth2/token", data=data, headers=basic(client_id, secret))


@pytest.fixture
def org(factories):
    return factories.organization()


@pytest.fixture
def people(factories, org, auth_headers):
    """Session headers of a platform admin, the org's owner, admin and member, and an outsider."""
    made = {"platform": factories.user(is_admin=True), "owner": factories.user(), "admin": factories.user(),
            "member": factories.user(), "outsider": factories.user()}
    for role in (Role.OWNER, Role.ADMIN, Role.MEMBER):
        factories.membership(org, made[role.value], role)
    return {name: auth_headers(user) for name, user in made.items()}


def create(client, headers, **fields):
    return client.post("/api/v1/clients", json=fields, headers=headers)


def audit_rows(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_platform_admin_creates_a_platform_client_and_sees_its_secret_once(client, app, people):
    """RFC 7591 3.2.1 names: the 201 carries client_id and client_secret (shown once, stored hashed);
    a GET never returns it, and the ETag header comes with both."""
    response = create(client, people["platform"], **RP)
    body = assert_success(response, 201)["data"]
    assert body["client_id"].startswith("cl-") and len(body["client_secret"]) >= 40
    assert body["organization_id"] is None and body["redirect_uris"] == RP["redirect_uris"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic" and body["has_secret"] is True
    assert response.headers["ETag"].startswith('"')
    read = client.get(f"/api/v1/clients/{body['client_id']}", headers=people["platform"])
    data = assert_success(read)["data"]
    assert "client_secret" not in data and "client_secret_hash" not in data
    assert read.headers["ETag"] == response.headers["ETag"]
    with app.app_context():
        row = db.session.scalars(select(OAuthClient).where(OAuthClient.client_id == body["client_id"])).one()
        assert body["client_secret"] not in row.client_secret_hash and row.check_client_secret(body["client_secret"])
    created = audit_rows(app, "client.created")
    assert len(created) == 1 and created[0].target_id == body["client_id"]
    assert body["client_secret"] not in str(created[0].details)


def test_secret_works_at_the_token_endpoint(client, people):
    """RFC 6749 4.4: a machine client made through the API gets a token with its one-time secret."""
    body = assert_success(create(client, people["platform"], **MACHINE), 201)["data"]
    assert client_credentials(client, body["client_id"], body["client_secret"]).status_code == 200


def test_public_client_has_no_secret(client, people, org):
    """RFC 7591 2: token_endpoint_auth_method none is a public client: no secret at all."""
    body = assert_success(create(client, people["owner"], organization_id=org.id, token_endpoint_auth_method="none",
                                 **RP), 201)["data"]
    assert body["client_secret"] is None and body["has_secret"] is False


@pytest.mark.parametrize("who, status", [("owner", 201), ("admin", 201), ("member", 403), ("outsider", 404)])
def test_who_creates_an_organization_client(client, people, org, who, status):
    """Owners and admins register their organization's clients; a member is refused (403), an outsider
    learns nothing about the organization (404)."""
    response = create(client, people[who], organization_id=org.id, **RP)
    if status == 201:
        assert assert_success(response, 201)["data"]["organization_id"] == org.id
    else:
        assert_error(response, status, "FORBIDDEN" if status == 403 else "NOT_FOUND")


def test_only_a_platform_admin_creates_a_platform_client(client, people):
    """A platform client (no organization) is a platform admin's: an owner must name the organization."""
    body = assert_error(create(client, people["owner"], **RP), 422, "VALIDATION_ERROR")
    assert "organization_id" in body["error"]["details"]


def test_unknown_organization_is_404(client, people):
    assert_error(create(client, people["platform"], organization_id="nope", **RP), 404, "NOT_FOUND")


@pytest.mark.parametrize("who, status", [("platform", 200), ("owner", 200), ("admin", 200), ("member", 403),
                                         ("outsider", 404)])
def test_permission_matrix_on_an_organization_client(client, people, org, who, status):
    """Get, patch, rotate and delete: managers of the organization and platform admins; a member 403;
    anyone else 404, the same answer as for a client that does not exist."""
    client_id = assert_success(create(client, people["owner"], organization_id=org.id, **RP), 201)["data"]["client_id"]
    path = f"/api/v1/clients/{client_id}"
    answers = [client.get(path, headers=people[who]),
               client.patch(path, json={"client_name": "Renamed"}, headers=people[who]),
               client.post(path + "/secret", json={}, headers=people[who]),
               client.delete(path, headers=people[who])]
    for response in answers:
        if status == 200:
            assert_success(response)
        else:
            assert_error(response, status, "FORBIDDEN" if status == 403 else "NOT_FOUND")
    if status == 404:
        missing = client.get("/api/v1/clients/cl-nobody", headers=people[who])
        assert missing.get_json()["message"] == answers[0].get_json()["message"]


def test_platform_client_is_invisible_to_organization_managers(client, people):
    """A platform client is 404 for an organization owner, and absent from their list."""
    client_id = assert_success(create(client, people["platform"], **RP), 201)["data"]["client_id"]
    assert_error(client.get(f"/api/v1/clients/{client_id}", headers=people["owner"]), 404, "NOT_FOUND")
    listed = assert_success(client.get("/api/v1/clients", headers=people["owner"]))["data"]
    assert client_id not in [item["client_id"] for item in listed]


def test_list_filters_and_paginates(client, people, org, factories):
    """Lists: newest first, `q` on name or client_id, organization_id filter, opaque cursor to the end."""
    other = factories.organization()
    for n in range(3):
        create(client, people["owner"], organization_id=org.id, **{**RP, "client_name": f"Shop {n}"})
    create(client, people["platform"], organization_id=other.id, **{**RP, "client_name": "Elsewhere"})
    page = assert_success(client.get("/api/v1/clients?limit=2", headers=people["owner"]))
    assert [c["client_name"] for c in page["data"]] == ["Shop 2", "Shop 1"]
    cursor = page["meta"]["pagination"]["next_cursor"]
    rest = assert_success(client.get(f"/api/v1/clients?limit=2&cursor={cursor}", headers=people["owner"]))
    assert [c["client_name"] for c in rest["data"]] == ["Shop 0"] and rest["meta"]["pagination"]["next_cursor"] is None
    everything = assert_success(client.get("/api/v1/clients", headers=people["platform"]))["data"]
    assert len(everything) == 4
    found = assert_success(client.get("/api/v1/clients?q=elsew", headers=people["platform"]))["data"]
    assert [c["client_name"] for c in found] == ["Elsewhere"]
    mine = assert_success(client.get(f"/api/v1/clients?organization_id={other.id}", headers=people["owner"]))["data"]
    assert mine == []
    assert_error(client.get("/api/v1/clients?colour=red", headers=people["owner"]), 422, "VALIDATION_ERROR")
    assert_error(client.get("/api/v1/clients?cursor=forged", headers=people["owner"]), 422, "VALIDATION_ERROR")


def test_unauthenticated_is_401(client):
    """RFC 6750 3.1: no token, a Bearer challenge."""
    response = client.get("/api/v1/clients")
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_fields_are_named(client, people):
    """Unknown fields are a 422 naming each; client_secret is never writable."""
    body = assert_error(create(client, people["platform"], colour="red", client_secret="mine", **RP), 422,
                        "VALIDATION_ERROR")
    assert set(body["error"]["details"]) >= {"colour", "client_secret"}


def test_bad_redirect_uri_is_refused_as_registration_refuses_it(client, people, app):
    """RFC 7591 2 / 3.2.2: the same rule and wording as /oauth2/register's invalid_client_metadata."""
    bad = {**RP, "redirect_uris": ["https://shop.example/cb#fragment"]}
    body = assert_error(create(client, people["platform"], **bad), 422, "VALIDATION_ERROR")
    registration = app.test_client().post("/oauth2/register", json=bad, headers=people["platform"]).get_json()
    assert registration["error"] == "invalid_client_metadata"
    assert body["error"]["details"]["redirect_uris"] == [registration["error_description"]]


@pytest.mark.parametrize("fields, field", [
    ({"redirect_uris": []}, "redirect_uris"),
    ({"redirect_uris": ["not a url"]}, "redirect_uris"),
    ({"token_endpoint_auth_method": "private_key_jwt"}, "token_endpoint_auth_method"),
    ({"jwks_uri": "javascript:alert(1)"}, "jwks_uri"),
    ({"policy_uri": "ftp://shop.example/p"}, "policy_uri"),
    ({"scope": "openid wizardry"}, "scope"),
    ({"frontchannel_logout_uri": "https://elsewhere.example/fc"}, "frontchannel_logout_uri"),
    ({"access_token_lifetime": 10 ** 6}, "access_token_lifetime"),
    ({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}, "grant_types"),
])
def test_metadata_rules_are_422_naming_the_field(client, people, fields, field):
    """RFC 7591 2 rules (and this server's) on create, each refusal naming its member."""
    body = assert_error(create(client, people["platform"], **{**RP, **fields}), 422, "VALIDATION_ERROR")
    assert field in body["error"]["details"]


def test_management_scopes_only_from_a_platform_admin(client, people, org):
    """Issue 11: management scopes in `scope` are granted only by a platform admin (403 naming it)."""
    body = assert_error(create(client, people["owner"], organization_id=org.id,
                               **{**MACHINE, "scope": "manage:clients"}), 403, "FORBIDDEN")
    assert "manage:clients" in body["error"]["details"]["scope"][0]
    made = assert_success(create(client, people["platform"], organization_id=org.id,
                                 **{**MACHINE, "scope": "manage:clients"}), 201)["data"]
    assert made["scope"] == "manage:clients"
    # The owner may change the granted client, keeping the scope, but not add another.
    path = f"/api/v1/clients/{made['client_id']}"
    assert_success(client.patch(path, json={"client_name": "Robot 2"}, headers=people["owner"]))
    assert_error(client.patch(path, json={"scope": "manage:clients manage:users"}, headers=people["owner"]), 403,
                 "FORBIDDEN")


def test_first_party_only_from_a_platform_admin(client, people, org):
    body = assert_error(create(client, people["owner"], organization_id=org.id, first_party=True, **RP), 403,
                        "FORBIDDEN")
    assert "first_party" in body["error"]["details"]


def test_patch_changes_given_fields_and_audits_their_names(client, people, org, app):
    """A PATCH changes only what it names; the audit row lists the changed field names, no values."""
    made = assert_success(create(client, people["owner"], organization_id=org.id, policy_uri="https://shop.example/p",
                                 **RP), 201)
    path = f"/api/v1/clients/{made['data']['client_id']}"
    etag = client.get(path, headers=people["owner"]).headers["ETag"]
    response = client.patch(path, json={"client_name": "New shop", "policy_uri": None, "access_token_lifetime": 600},
                            headers={**people["owner"], "If-Match": etag})
    data = assert_success(response)["data"]
    assert data["client_name"] == "New shop" and data["policy_uri"] is None and data["access_token_lifetime"] == 600
    assert data["redirect_uris"] == RP["redirect_uris"] and response.headers["ETag"] != etag
    updated = audit_rows(app, "client.updated")
    assert updated[0].details["changed"] == ["access_token_lifetime", "client_name", "policy_uri"]


def test_if_match_mismatch_is_412(client, people):
    """RFC 9110 13.1.1: a stale ETag in If-Match is 412 for PATCH and DELETE; the client is unchanged."""
    client_id = assert_success(create(client, people["platform"], **RP), 201)["data"]["client_id"]
    path = f"/api/v1/clients/{client_id}"
    stale = client.get(path, headers=people["platform"]).headers["ETag"]
    assert_success(client.patch(path, json={"client_name": "First"}, headers=people["platform"]))
    assert_error(client.patch(path, json={"client_name": "Second"}, headers={**people["platform"], "If-Match": stale}),
                 412, "PRECONDITION_FAILED")
    assert_error(client.delete(path, headers={**people["platform"], "If-Match": stale}), 412, "PRECONDITION_FAILED")
    assert client.get(path, headers=people["platform"]).get_json()["data"]["client_name"] == "First"


def test_deactivated_client_is_refused_at_once(client, people):
    """is_active false: the token endpoint refuses the client on the very next request (invalid_client)."""
    made = assert_success(create(client, people["platform"], **MACHINE), 201)["data"]
    assert client_credentials(client, made["client_id"], made["client_secret"]).status_code == 200
    assert_success(client.patch(f"/api/v1/clients/{made['client_id']}", json={"is_active": False},
                                headers=people["platform"]))
    refused = client_credentials(client, made["client_id"], made["client_secret"])
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_client"


def test_delete_removes_the_client(client, people, app):
    """DELETE: the client is gone (404 after), its secret no longer authenticates, the deletion is audited."""
    made = assert_success(create(client, people["platform"], **MACHINE), 201)["data"]
    path = f"/api/v1/clients/{made['client_id']}"
    assert_success(client.delete(path, headers=people["platform"]))
    assert_error(client.get(path, headers=people["platform"]), 404, "NOT_FOUND")
    assert client_credentials(client, made["client_id"], made["client_secret"]).status_code == 401
    assert audit_rows(app, "client.deleted")[0].target_id == made["client_id"]


def test_rotation_with_grace_keeps_the_old_secret_until_the_grace_ends(client, people, app):
    """The new secret is shown once and works at once; the old one until grace_period ends, then
    RFC 6749 5.2 invalid_client."""
    made = assert_success(create(client, people["platform"], **MACHINE), 201)["data"]
    rotated = client.post(f"/api/v1/clients/{made['client_id']}/secret", json={"grace_period": 3600},
                          headers=people["platform"])
    new = assert_success(rotated)["data"]
    assert new["client_secret"] != made["client_secret"] and new["previous_secret_expires_at"]
    assert client_credentials(client, made["client_id"], new["client_secret"]).status_code == 200
    assert client_credentials(client, made["client_id"], made["client_secret"]).status_code == 200
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(seconds=3601)):
        old = client_credentials(client, made["client_id"], made["client_secret"])
        assert old.status_code == 401 and old.get_json()["error"] == "invalid_client"
        assert client_credentials(client, made["client_id"], new["client_secret"]).status_code == 200
    events = audit_rows(app, "client.secret_rotated")
    assert events[0].details["grace_period"] == 3600 and new["client_secret"] not in str(events[0].details)


def test_rotation_without_grace_ends_the_old_secret_at_once(client, people):
    made = assert_success(create(client, people["platform"], **MACHINE), 201)["data"]
    new = assert_success(client.post(f"/api/v1/clients/{made['client_id']}/secret", json={},
                                     headers=people["platform"]))["data"]
    assert new["previous_secret_expires_at"] is None
    assert client_credentials(client, made["client_id"], made["client_secret"]).status_code == 401


@pytest.mark.parametrize("body", [{"grace_period": -1}, {"grace_period": 8 * 86400}, {"grace": 5}])
def test_rotation_refuses_bad_grace_periods(client, people, body):
    made = assert_success(create(client, people["platform"], **MACHINE), 201)["data"]
    assert_error(client.post(f"/api/v1/clients/{made['client_id']}/secret", json=body, headers=people["platform"]),
                 422, "VALIDATION_ERROR")


def test_public_client_has_no_secret_to_rotate(client, people):
    made = assert_success(create(client, people["platform"], token_endpoint_auth_method="none", **RP), 201)["data"]
    assert_error(client.post(f"/api/v1/clients/{made['client_id']}/secret", json={}, headers=people["platform"]),
                 422, "VALIDATION_ERROR")


def test_per_client_access_token_lifetime_is_honoured(client, people):
    """RFC 6749 5.1 expires_in: a client's access_token_lifetime replaces ACCESS_TOKEN_LIFETIME."""
    made = assert_success(create(client, people["platform"], access_token_lifetime=120, **MACHINE), 201)["data"]
    token = client_credentials(client, made["client_id"], made["client_secret"]).get_json()
    assert token["expires_in"] == 120


def test_service_account_with_manage_clients_manages_its_organization(client, people, org, factories):
    """A service account holding manage:clients registers and lists its own organization's clients,
    and cannot see or create another organization's (404)."""
    headers = service_headers(client, factories, "manage:clients", organization_id=org.id)
    made = assert_success(create(client, headers, organization_id=org.id, **RP), 201)["data"]
    listed = [c["client_id"] for c in assert_success(client.get("/api/v1/clients", headers=headers))["data"]]
    assert made["client_id"] in listed
    other = factories.organization()
    assert_error(create(client, headers, organization_id=other.id, **RP), 404, "NOT_FOUND")
    elsewhere = assert_success(create(client, people["platform"], organization_id=other.id, **RP), 201)["data"]
    assert_error(client.get(f"/api/v1/clients/{elsewhere['client_id']}", headers=headers), 404, "NOT_FOUND")
    assert_error(create(client, headers, organization_id=org.id, **{**MACHINE, "scope": "manage:users"}), 403,
                 "FORBIDDEN")


def test_service_account_without_manage_clients_is_403(client, factories, org):
    """A token without manage:clients is refused with 403 (RFC 6750 3.1 insufficient_scope)."""
    headers = service_headers(client, factories, "read:audit", organization_id=org.id)
    response = client.get("/api/v1/clients", headers=headers)
    assert_error(response, 403, "FORBIDDEN")
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


@pytest.mark.redis
def test_deactivation_reaches_another_app_sharing_redis_at_once(make_app, people, client):
    """Two app objects (two workers or nodes) sharing Redis, both caching clients for 30 s: a
    deactivation through one is refused by the other's token endpoint on its next request."""
    first, second = make_app(CLIENT_CACHE_SECONDS=30), make_app(CLIENT_CACHE_SECONDS=30)
    api, other = first.test_client(), second.test_client()
    made = assert_success(create(api, people["platform"], **MACHINE), 201)["data"]
    assert client_credentials(other, made["client_id"], made["client_secret"]).status_code == 200  # now cached
    assert client_credentials(other, made["client_id"], made["client_secret"]).status_code == 200
    assert_success(api.patch(f"/api/v1/clients/{made['client_id']}", json={"is_active": False},
                             headers=people["platform"]))
    refused = client_credentials(other, made["client_id"], made["client_secret"])
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_client"


@pytest.mark.postgres
def test_concurrent_patches_with_one_etag_give_one_200(app, factories, auth_headers):
    """RFC 9110 13.1.1 on PostgreSQL: eight PATCHes sent together over HTTP with the same If-Match, each
    with its own session: the row is read FOR UPDATE, so exactly one changes it and the others get 412."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    import requests

    from tests.servers import LiveServer

    admin = factories.user(is_admin=True)
    headers = [auth_headers(admin) for _ in range(8)]
    made = create(app.test_client(), headers[0], **RP)
    etag, path = made.headers["ETag"], f"/api/v1/clients/{assert_success(made, 201)['data']['client_id']}"
    live = LiveServer(app)
    live.start()
    barrier = Barrier(len(headers))

    def patch(n: int):
        barrier.wait()
        return requests.patch(live.url + path, json={"client_name": f"Writer {n}"}, timeout=30,
                              headers={**headers[n], "If-Match": etag})

    try:
        with ThreadPoolExecutor(len(headers)) as pool:
            statuses = sorted(response.status_code for response in pool.map(patch, range(len(headers))))
    finally:
        live.stop()
    assert statuses == [200] + [412] * (len(headers) - 1)
    assert len(audit_rows(app, "client.updated")) == 1


def test_dynamic_registration_cannot_grant_itself_management_scopes(client, app):
    """RFC 7591 3.2.2: /oauth2/register checks scope against the provider's scopes_supported, which has
    no management scope, so an initial access token cannot make a service account."""
    token = app.test_cli_runner().invoke(args=["clients", "initial-token"]).output.strip()
    response = client.post("/oauth2/register", json={**MACHINE, "scope": "manage:clients"},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_client_metadata"


def test_per_client_refresh_token_lifetime_is_honoured(app, factories):
    """A client's refresh_token_lifetime replaces REFRESH_TOKEN_LIFETIME for the refresh tokens it gets."""
    from idp.services.tokens import create_refresh_token, find_refresh_token

    user, rp = factories.user(), factories.client(refresh_token_lifetime=600)
    with app.app_context():
        token = create_refresh_token(db.session.get(OAuthClient, rp.id), user, "openid offline_access")
        row = find_refresh_token(token)
        assert (row.expires_at - row.issued_at).total_seconds() == 600
