"""/api/v1/upstreams on the management API (issue #11): who may call it with which credentials (API
sessions, users' and service accounts' manage:upstreams tokens), and conditional writes with ETags
(RFC 9110 13.1.1)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import requests
from idp.extensions import db
from idp.services.sessions import create_session
from tests.api.envelope_assertions import assert_error, assert_success
from tests.api.service_accounts import access_token_of, bearer, service_account, service_headers
from tests.api.test_admin_users import live  # noqa: F401 (fixture: a threaded server for concurrent requests)
from tests.api.test_management_auth import first_party_rp, user_token
from tests.api.test_openapi import parameter_names, spec_of, success_response
from tests.api.test_upstreams import SECRET, URL, audit_rows, oidc_body, provider, stored  # noqa: F401 (fixture)
from tests.oidc.conftest import basic_auth

SCOPE = "manage:upstreams"


@pytest.fixture
def world(app, factories):
    """Acme (owner, admin, member) with an upstream, Globex with none, an outsider, a platform admin and a
    platform-wide upstream; an API session for each person."""
    acme, globex = factories.organization(name="Acme"), factories.organization(name="Globex")
    people = {name: factories.user(email=f"{name}@example.com", is_admin=name == "platform_admin")
              for name in ("platform_admin", "owner", "admin", "member", "outsider")}
    for role in ("owner", "admin", "member"):
        factories.membership(acme, people[role], role)
    with app.app_context():
        sessions = {name: bearer(create_session(db.session.merge(user))[1]) for name, user in people.items()}
        db.session.commit()
    return SimpleNamespace(acme=acme.id, globex=globex.id, people=people, sessions=sessions,
                           acme_upstream=factories.upstream(slug="acme-sso", organization_id=acme.id).id,
                           platform_upstream=factories.upstream(slug="platform-sso").id)


def headers_of(app, client, factories, world, who: str) -> dict:
    """Bearer headers for a caller: `<person>` (API session), `<person>-token` (their manage:upstreams access
    token), `acme-robot` / `globex-robot` / `platform-robot` (service accounts with manage:upstreams)."""
    if who.endswith("-robot"):
        owner = {"acme-robot": world.acme, "globex-robot": world.globex, "platform-robot": None}[who]
        return service_headers(client, factories, SCOPE, organization_id=owner)
    if who.endswith("-token"):
        rp = first_party_rp(factories, f"openid {SCOPE}")
        return bearer(user_token(app, client, rp, world.people[who.removesuffix("-token")], f"openid {SCOPE}")
                      ["access_token"])
    return world.sessions[who]


# -- the permission matrix ------------------------------------------------------------------------

@pytest.mark.parametrize("who, status", [
    ("platform_admin", 200), ("platform_admin-token", 200), ("owner", 200), ("owner-token", 200), ("admin", 200),
    ("member", 404), ("member-token", 404), ("outsider", 404),
    ("acme-robot", 200), ("globex-robot", 404), ("platform-robot", 200)])
def test_an_organizations_upstream_answers_its_managers_only(app, client, factories, world, who, status):
    """Platform admins (session or token), the organization's owners and admins, its own service account and a
    platform-wide one get it; members, outsiders and another organization's service account are told it does
    not exist (404): a scope never adds rights."""
    response = client.get(f"{URL}/{world.acme_upstream}", headers=headers_of(app, client, factories, world, who))
    if status == 200:
        assert assert_success(response)["data"]["id"] == world.acme_upstream
    else:
        assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize("who, status", [("platform_admin-token", 200), ("platform-robot", 200), ("owner", 404),
                                         ("owner-token", 404), ("acme-robot", 404)])
def test_a_platform_wide_upstream_is_for_platform_admins_only(app, client, factories, world, who, status):
    """Only a platform admin or a platform-wide service account manages an upstream without an organization."""
    response = client.get(f"{URL}/{world.platform_upstream}", headers=headers_of(app, client, factories, world, who))
    if status == 200:
        assert assert_success(response)["data"]["id"] == world.platform_upstream
    else:
        assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize("who, slugs", [("platform-robot", ["acme-sso", "platform-sso"]), ("acme-robot", ["acme-sso"]),
                                        ("globex-robot", []), ("owner-token", ["acme-sso"]), ("member-token", [])])
def test_the_list_shows_what_the_caller_manages(app, client, factories, world, who, slugs):
    """A list holds exactly the upstreams the caller may manage."""
    body = assert_success(client.get(URL, headers=headers_of(app, client, factories, world, who)))
    assert sorted(item["slug"] for item in body["data"]) == slugs


def test_an_organizations_service_account_creates_and_changes_its_upstreams(app, client, factories, world, provider):
    """201 and 200: it acts as an admin of its organization; the audit rows have no actor user and name its
    client_id, and list changed field names only, never a secret."""
    account = service_account(factories, SCOPE, organization_id=world.acme)
    headers = bearer(access_token_of(client, account, scope=SCOPE))
    made = assert_success(client.post(URL, json=oidc_body(provider, "robot-sso", organization_id=world.acme),
                                      headers=headers), 201)["data"]
    changed = client.patch(f"{URL}/{made['id']}", json={"display_name": "Renamed", "client_secret": "rotated-2"},
                           headers=headers)
    assert assert_success(changed)["data"]["display_name"] == "Renamed"
    assert "rotated-2" not in changed.get_data(as_text=True)
    [created], [updated] = audit_rows(app, "upstream.created"), audit_rows(app, "upstream.updated")
    for event in (created, updated):
        assert event.actor_user_id is None and event.details["actor_client_id"] == account.client_id
        assert event.organization_id == world.acme
    assert updated.details["fields"] == ["client_secret", "display_name"]
    assert SECRET not in str(created.details) and "rotated-2" not in str(updated.details)


@pytest.mark.parametrize("body, status, error", [
    ({"organization_id": "globex"}, 404, "NOT_FOUND"),
    ({}, 422, "VALIDATION_ERROR"),
    ({"organization_id": "acme", "email_domains": ["acme.example"]}, 403, "FORBIDDEN")])
def test_an_organizations_service_account_stays_within_an_admins_rights(client, factories, world, provider, body,
                                                                         status, error):
    """Another organization is not found, a platform-wide upstream needs a platform admin (422 naming
    organization_id) and claiming email domains is for platform admins (403), as for a user who is an admin."""
    headers = service_headers(client, factories, SCOPE, organization_id=world.acme)
    fields = {name: getattr(world, value) if name == "organization_id" else value for name, value in body.items()}
    assert_error(client.post(URL, json=oidc_body(provider, "robot-sso", **fields), headers=headers), status, error)


def test_a_platform_wide_service_account_creates_a_platform_upstream_with_domains(client, factories, world, provider):
    """201: a service account without an organization has a platform admin's rights, trust decisions included."""
    headers = service_headers(client, factories, SCOPE)
    made = client.post(URL, json=oidc_body(provider, "robot-sso", email_domains=["robot.example"]), headers=headers)
    data = assert_success(made, 201)["data"]
    assert data["organization_id"] is None and data["email_domains"] == ["robot.example"]


def test_another_organizations_service_account_cannot_delete(app, client, factories, world):
    """404, and the upstream stays."""
    headers = service_headers(client, factories, SCOPE, organization_id=world.globex)
    assert_error(client.delete(f"{URL}/{world.acme_upstream}", headers=headers), 404, "NOT_FOUND")
    assert stored(app, world.acme_upstream) is not None


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
def test_a_service_account_without_manage_upstreams_is_403_insufficient_scope(client, factories, world, method):
    """RFC 6750 3.1: a valid management token lacking manage:upstreams, even a platform-wide one's."""
    headers = service_headers(client, factories, "manage:clients")
    url = URL if method in ("GET", "POST") else f"{URL}/{world.platform_upstream}"
    response = client.open(url, method=method, json={} if method in ("POST", "PATCH") else None, headers=headers)
    assert_error(response, 403, "FORBIDDEN")
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert f'scope="{SCOPE}"' in response.headers["WWW-Authenticate"]
    assert stored(client.application, world.platform_upstream) is not None


def test_a_platform_admins_token_without_manage_upstreams_is_403(app, client, factories, world):
    """A user's token holds only its scopes, whatever the user may do with a session."""
    rp = first_party_rp(factories, "openid manage:users")
    token = user_token(app, client, rp, world.people["platform_admin"], "openid manage:users")["access_token"]
    assert_error(client.get(URL, headers=bearer(token)), 403, "FORBIDDEN")


def test_a_token_of_another_audience_is_401(client, factories, world):
    """RFC 9068 4: an ordinary client_credentials token (aud = the issuer) is not for the API."""
    account = service_account(factories, "reports:read")
    response = client.get(URL, headers=bearer(access_token_of(client, account, scope="reports:read")))
    assert_error(response, 401, "UNAUTHORIZED")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_revoked_token_is_401(client, factories, world):
    """RFC 7009 2.1: once revoked at /oauth2/revoke the service account's token is refused."""
    account = service_account(factories, SCOPE)
    token = access_token_of(client, account, scope=SCOPE)
    assert_success(client.get(URL, headers=bearer(token)))
    revoked = client.post("/oauth2/revoke", data={"token": token}, headers=basic_auth(account.client_id))
    assert revoked.status_code == 200
    assert_error(client.get(URL, headers=bearer(token)), 401, "UNAUTHORIZED")


# -- ETags and If-Match ---------------------------------------------------------------------------

def item(world) -> str:
    return f"{URL}/{world.acme_upstream}"


def etag_of(client, world) -> str:
    response = client.get(item(world), headers=world.sessions["owner"])
    assert response.status_code == 200 and response.headers["ETag"].startswith('"')
    return response.headers["ETag"]


def test_create_returns_the_etag_a_get_gives(client, world, provider):
    """201 with the ETag the upstream has: it may go straight back in If-Match."""
    made = client.post(URL, json=oidc_body(provider, "fresh-sso"), headers=world.sessions["platform_admin"])
    upstream_id = assert_success(made, 201)["data"]["id"]
    again = client.get(f"{URL}/{upstream_id}", headers=world.sessions["platform_admin"])
    assert made.headers["ETag"] == again.headers["ETag"]


def test_a_patch_with_the_current_etag_succeeds_and_answers_the_new_one(client, world):
    """200; the answer's ETag is new and is what a GET then gives."""
    etag = etag_of(client, world)
    changed = client.patch(item(world), json={"display_name": "Acme SSO 2"},
                           headers={**world.sessions["owner"], "If-Match": etag})
    assert assert_success(changed)["data"]["display_name"] == "Acme SSO 2"
    assert changed.headers["ETag"] != etag and changed.headers["ETag"] == etag_of(client, world)


def test_a_secret_change_changes_the_etag(client, world, provider):
    """A write-only secret is not shown, but a reader's copy is stale once it changed."""
    headers = world.sessions["platform_admin"]
    made = client.post(URL, json=oidc_body(provider, "secret-sso"), headers=headers)
    url = f"{URL}/{assert_success(made, 201)['data']['id']}"
    read = {**headers, "If-Match": made.headers["ETag"]}
    changed = client.patch(url, json={"client_secret": "rotated-3"}, headers=read)
    assert assert_success(changed)["data"]["client_secret_set"] is True
    assert changed.headers["ETag"] != made.headers["ETag"]
    assert_error(client.delete(url, headers=read), 412, "PRECONDITION_FAILED")


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_a_stale_etag_is_412_and_changes_nothing(app, client, world, method):
    """RFC 9110 13.1.1: someone changed it since the ETag was read, so the write is refused in the envelope."""
    stale = etag_of(client, world)
    assert_success(client.patch(item(world), json={"display_name": "Changed meanwhile"},
                                headers=world.sessions["admin"]))
    response = client.open(item(world), method=method, json={"enabled": False} if method == "PATCH" else None,
                           headers={**world.sessions["owner"], "If-Match": stale})
    assert_error(response, 412, "PRECONDITION_FAILED")
    row = stored(app, world.acme_upstream)
    assert row is not None and row.enabled is True and row.display_name == "Changed meanwhile"


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_if_match_star_matches_any_current_upstream(app, client, world, method):
    """`If-Match: *` only asks that the upstream exists."""
    response = client.open(item(world), method=method, json={"enabled": False} if method == "PATCH" else None,
                           headers={**world.sessions["owner"], "If-Match": "*"})
    assert_success(response)
    assert (stored(app, world.acme_upstream) is None) == (method == "DELETE")


def test_a_delete_with_the_current_etag_deletes(app, client, world):
    """200, and it is gone."""
    response = client.delete(item(world), headers={**world.sessions["owner"], "If-Match": etag_of(client, world)})
    assert_success(response)
    assert stored(app, world.acme_upstream) is None


# -- OpenAPI --------------------------------------------------------------------------------------

def test_the_spec_documents_credentials_errors_and_conditional_writes(client):
    """Bearer security with 401 and 403 everywhere, 404 for an item, If-Match and 412 on PATCH and DELETE, and
    the ETag header on GET, create and PATCH."""
    spec = spec_of(client)
    for path, methods in {URL: ("get", "post"), URL + "/{upstream_id}": ("get", "patch", "delete")}.items():
        for method in methods:
            operation = spec["paths"][path][method]
            responses, params = set(operation["responses"]), parameter_names(spec, path, method)
            assert operation.get("security") and {"401", "403"} <= responses, (method, path)
            assert ("404" in responses) == (path != URL or method == "post"), (method, path)
            assert ("412" in responses) == (params.get("If-Match") == "header") == (method in ("patch", "delete"))
            etag_shown = "ETag" in success_response(spec, operation).get("headers", {})
            returns_one = method in ("post", "patch") or (method == "get" and path != URL)
            assert etag_shown == returns_one, (method, path)


# -- concurrency on PostgreSQL --------------------------------------------------------------------

@pytest.mark.postgres
def test_concurrent_patches_with_one_etag_give_one_200_and_412s(live, world):
    """RFC 9110 13.1.1: of six PATCHes sent at once with the same If-Match, one wins and five get 412 (the row is
    locked before the ETag is compared)."""
    url, headers = f"{live.url}{item(world)}", world.sessions["owner"]
    etag = requests.get(url, headers=headers, timeout=30).headers["ETag"]

    def patch(n: int) -> int:
        return requests.patch(url, json={"display_name": f"Name {n}"}, headers={**headers, "If-Match": etag},
                              timeout=30).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(patch, range(6)))
    assert codes == [200] + [412] * 5
