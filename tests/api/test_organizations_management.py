"""/api/v1/organizations on the management API's principal (issue #11): API sessions, users' access tokens
and service accounts with manage:organizations; ETags and If-Match (RFC 9110 13.1.1) on organizations and
members."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, Membership, Organization, User
from idp.services.sessions import create_session
from tests.api.envelope_assertions import assert_error, assert_success
from tests.api.service_accounts import service_token
from tests.oidc.conftest import REDIRECT_URI, Flow, basic_auth

ORGS = "/api/v1/organizations"
SCOPE = "manage:organizations"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def audit_rows(app, action: str, outcome: str = "success") -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.action == action, AuditEvent.outcome == outcome)
        return list(db.session.scalars(query.order_by(AuditEvent.created_at)))


def snapshot(app, organization_id: str) -> tuple:
    """What a refused request must leave as it was: the organization's fields and its memberships."""
    with app.app_context():
        organization = db.session.get(Organization, organization_id)
        fields = (organization.name, organization.slug, organization.description) if organization else None
        members = db.session.execute(select(Membership.user_id, Membership.role)
                                     .where(Membership.organization_id == organization_id)).all()
        return fields, sorted(tuple(row) for row in members)


def user_access_token(app, client, factories, user, scope: str) -> str:
    """A user's access token from the code flow of a first-party client registered with `scope`."""
    rp = factories.client(redirect_uris=[REDIRECT_URI], first_party=True, scope=scope,
                          grant_types=["authorization_code", "refresh_token"])
    flow = Flow(app, client, rp)
    flow.sign_in(user)
    return flow.tokens(scope=scope)["access_token"]


@pytest.fixture
def world(app, client, factories):
    """Acme Corp with an owner, an admin and two members; an outsider; a platform admin outside it; another
    organization. `world.headers(who)` makes the credentials of one kind of caller on demand."""
    with app.app_context():
        acme, other = Organization(name="Acme Corp", slug="acme-corp"), Organization(name="Other", slug="other")
        names = ("owner", "admin", "member", "member2", "outsider", "platform_admin")
        users = {name: User(email=f"{name}@example.com", name=name.title(), is_admin=name == "platform_admin")
                 for name in names}
        db.session.add_all([acme, other, *users.values()])
        db.session.flush()
        db.session.add_all(Membership(organization_id=acme.id, user_id=users[name].id, role=name.rstrip("2"))
                           for name in ("owner", "admin", "member", "member2"))
        sessions = {name: bearer(create_session(user)[1]) for name, user in users.items()}
        db.session.commit()
        people = {name: SimpleNamespace(id=user.id, email=user.email) for name, user in users.items()}
        org_id, other_id = acme.id, other.id

    def headers(who: str) -> dict:
        if who in sessions:
            return sessions[who]
        if who == "platform_admin_token":
            return bearer(user_access_token(app, client, factories, people["platform_admin"], f"openid {SCOPE}"))
        accounts = {"org_service_account": (SCOPE, org_id),
                    "org_service_account_without_scope": ("manage:clients", org_id),
                    "other_org_service_account": (SCOPE, other_id), "platform_service_account": (SCOPE, None)}
        scope, organization_id = accounts[who]
        return bearer(service_token(client, factories, scope, organization_id=organization_id))

    return SimpleNamespace(org_id=org_id, other_id=other_id, users=people, headers=headers, url=f"{ORGS}/{org_id}")


# -- the permission matrix ------------------------------------------------------------------------

PRINCIPALS = ("platform_admin", "platform_admin_token", "owner", "admin", "member", "outsider",
              "org_service_account", "org_service_account_without_scope", "other_org_service_account",
              "platform_service_account")


def operations(world) -> dict:
    """name -> (method, url, json) of every organization operation, acting on member2 where a member is named."""
    member = f"{world.url}/members/{world.users['member2'].id}"
    return {
        "get": ("get", world.url, None),
        "patch": ("patch", world.url, {"name": "Acme Renamed"}),
        "delete": ("delete", world.url, None),
        "list_members": ("get", f"{world.url}/members", None),
        "add_member": ("post", f"{world.url}/members", {"user_id": world.users["outsider"].id}),
        "add_owner": ("post", f"{world.url}/members", {"user_id": world.users["outsider"].id, "role": "owner"}),
        "get_member": ("get", member, None),
        "remove_member": ("delete", member, None),
        "change_role": ("patch", f"{member}/role", {"role": "admin"}),
        "grant_ownership": ("patch", f"{member}/role", {"role": "owner"}),
    }


# Expected status per operation, in PRINCIPALS' order. Members read; owners and admins manage (the
# organization's service account as an admin); only owners delete and grant ownership (platform admins and
# platform-wide service accounts as owners); outsiders and other organizations' accounts get 404; a token
# without manage:organizations 403.
MATRIX = {
    "get":             (200, 200, 200, 200, 200, 404, 200, 403, 404, 200),
    "patch":           (200, 200, 200, 200, 403, 404, 200, 403, 404, 200),
    "delete":          (200, 200, 200, 403, 403, 404, 403, 403, 404, 200),
    "list_members":    (200, 200, 200, 200, 200, 404, 200, 403, 404, 200),
    "add_member":      (201, 201, 201, 201, 403, 404, 201, 403, 404, 201),
    "add_owner":       (201, 201, 201, 403, 403, 404, 403, 403, 404, 201),
    "get_member":      (200, 200, 200, 200, 200, 404, 200, 403, 404, 200),
    "remove_member":   (200, 200, 200, 200, 403, 404, 200, 403, 404, 200),
    "change_role":     (200, 200, 200, 200, 403, 404, 200, 403, 404, 200),
    "grant_ownership": (200, 200, 200, 403, 403, 404, 403, 403, 404, 200),
}
ERROR_TYPES = {403: "FORBIDDEN", 404: "NOT_FOUND"}
WRITES = {"patch", "delete", "add_member", "add_owner", "remove_member", "change_role", "grant_ownership"}


@pytest.mark.parametrize("operation", sorted(MATRIX))
@pytest.mark.parametrize("who", PRINCIPALS)
def test_permission_matrix(app, client, world, who, operation):
    """Each kind of caller gets exactly its status for each operation; a refusal changes nothing."""
    expected = MATRIX[operation][PRINCIPALS.index(who)]
    method, url, payload = operations(world)[operation]
    headers = world.headers(who)
    before = snapshot(app, world.org_id)
    response = getattr(client, method)(url, json=payload, headers=headers)
    if expected >= 400:
        assert_error(response, expected, ERROR_TYPES[expected])
        assert snapshot(app, world.org_id) == before
    else:
        assert_success(response, expected)
        assert (snapshot(app, world.org_id) != before) == (operation in WRITES)


def test_token_without_the_scope_is_403_insufficient_scope(client, world):
    """RFC 6750 3.1: a service account of the organization lacking manage:organizations."""
    response = client.get(world.url, headers=world.headers("org_service_account_without_scope"))
    assert_error(response, 403, "FORBIDDEN")
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge and f'scope="{SCOPE}"' in challenge


def test_users_token_without_the_scope_is_403(app, client, factories, world):
    """An owner's access token granted another management scope cannot read the organization."""
    token = user_access_token(app, client, factories, world.users["owner"], "openid manage:clients")
    response = client.get(world.url, headers=bearer(token))
    assert_error(response, 403, "FORBIDDEN")
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("who, status", [("owner", 200), ("member", 403)])
def test_users_token_acts_as_that_user(app, client, factories, world, who, status):
    """A user's token with manage:organizations has that user's rights, no more: an owner renames, a member not."""
    token = user_access_token(app, client, factories, world.users[who], f"openid {SCOPE}")
    response = client.patch(world.url, json={"name": "Renamed"}, headers=bearer(token))
    assert response.status_code == status, response.get_json()


def test_token_of_another_audience_is_401(client, factories, world):
    """RFC 9068 4: a client_credentials token without a management scope is for the issuer, not the API."""
    token = service_token(client, factories, "reports:read", organization_id=world.org_id)
    response = client.get(world.url, headers=bearer(token))
    assert_error(response, 401, "UNAUTHORIZED")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_revoked_token_is_401(client, factories, world):
    """RFC 7009 2.1: the organization's service account token stops working once revoked."""
    account = factories.client(grant_types=["client_credentials"], redirect_uris=[], scope=SCOPE,
                               organization_id=world.org_id)
    granted = client.post("/oauth2/token", data={"grant_type": "client_credentials", "scope": SCOPE},
                          headers=basic_auth(account.client_id))
    token = granted.get_json()["access_token"]
    assert client.get(world.url, headers=bearer(token)).status_code == 200
    revoked = client.post("/oauth2/revoke", data={"token": token}, headers=basic_auth(account.client_id))
    assert revoked.status_code == 200
    assert_error(client.get(world.url, headers=bearer(token)), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("who", ["outsider", "other_org_service_account"])
def test_refusals_never_tell_an_organization_exists(client, world, who):
    """The same 404 for a real organization (and member) as for a missing one."""
    headers = world.headers(who)
    member = f"/members/{world.users['member'].id}"
    real = [client.get(world.url + suffix, headers=headers) for suffix in ("", member)]
    missing = [client.get(f"{ORGS}/missing" + suffix, headers=headers) for suffix in ("", member)]
    for found, absent in zip(real, missing):
        assert assert_error(found, 404, "NOT_FOUND")["error"] == assert_error(absent, 404, "NOT_FOUND")["error"]
        assert found.get_json()["message"] == absent.get_json()["message"]


def test_organization_service_account_reads_as_an_admin(client, world):
    """Its role in the organization it belongs to is admin."""
    body = assert_success(client.get(world.url, headers=world.headers("org_service_account")))
    assert body["data"]["role"] == "admin"


def test_service_account_changes_are_audited_with_its_client_id(app, client, factories, world):
    """Audit rows of a service account have no actor user and name its client_id in details."""
    account = factories.client(grant_types=["client_credentials"], redirect_uris=[], scope=SCOPE,
                               organization_id=world.org_id)
    token = client.post("/oauth2/token", data={"grant_type": "client_credentials", "scope": SCOPE},
                        headers=basic_auth(account.client_id)).get_json()["access_token"]
    assert client.patch(world.url, json={"name": "By machine"}, headers=bearer(token)).status_code == 200
    denied = client.delete(world.url, headers=bearer(token))
    assert_error(denied, 403, "FORBIDDEN")
    [event] = audit_rows(app, "organization.update")
    assert event.actor_user_id is None and event.organization_id == world.org_id
    assert event.details == {"fields": ["name"], "actor_client_id": account.client_id}
    [failure] = audit_rows(app, "organization.delete", outcome="failure")
    assert failure.actor_user_id is None and failure.details["actor_client_id"] == account.client_id


# -- create ---------------------------------------------------------------------------------------

def test_organization_service_account_cannot_create(app, client, world):
    """403, nothing written, a failure audit row naming the account."""
    response = client.post(ORGS, json={"name": "Spawned"}, headers=world.headers("org_service_account"))
    assert_error(response, 403, "FORBIDDEN")
    with app.app_context():
        assert db.session.scalar(select(Organization).where(Organization.name == "Spawned")) is None
    [failure] = audit_rows(app, "organization.create", outcome="failure")
    assert failure.actor_user_id is None and "actor_client_id" in failure.details


def test_platform_service_account_must_name_the_owner(app, client, world):
    """No user is behind it, and an organization always has an owner: 422 naming owner_user_id."""
    response = client.post(ORGS, json={"name": "Ownerless"}, headers=world.headers("platform_service_account"))
    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert "owner_user_id" in body["error"]["details"]


def test_platform_service_account_creates_with_a_named_owner(app, client, world):
    """201 with an ETag; the named user is the owner; the caller holds no role; audited with the client_id."""
    outsider = world.users["outsider"]
    response = client.post(ORGS, json={"name": "Machine Made", "owner_email": outsider.email.upper()},
                           headers=world.headers("platform_service_account"))
    data = assert_success(response, 201)["data"]
    assert data["role"] is None and response.headers["ETag"].startswith('"')
    assert snapshot(app, data["id"])[1] == [(outsider.id, "owner")]
    [event] = audit_rows(app, "organization.create")
    assert event.actor_user_id is None and event.details["owner_user_id"] == outsider.id
    assert event.details["actor_client_id"]
    assert client.get(f"{ORGS}/{data['id']}", headers=world.headers("outsider")).get_json()["data"]["role"] == "owner"


def test_platform_admin_creates_for_someone_else(app, client, world):
    """A platform admin names the owner by id and does not become a member."""
    outsider = world.users["outsider"]
    response = client.post(ORGS, json={"name": "For You", "owner_user_id": outsider.id},
                           headers=world.headers("platform_admin"))
    data = assert_success(response, 201)["data"]
    assert data["role"] is None and snapshot(app, data["id"])[1] == [(outsider.id, "owner")]


@pytest.mark.parametrize("owner", [{"owner_user_id": "no-such-user"}, {"owner_email": "outsider@example.com"}])
def test_others_cannot_name_another_owner_nor_learn_who_exists(app, client, world, owner):
    """A user who is no platform admin gets one 403 for an existing account and a missing one alike."""
    response = client.post(ORGS, json={"name": "Sneaky", **owner}, headers=world.headers("member"))
    assert_error(response, 403, "FORBIDDEN")
    with app.app_context():
        assert db.session.scalar(select(Organization).where(Organization.name == "Sneaky")) is None


def test_a_user_may_name_themself_as_owner(client, world):
    """Naming oneself is the default made explicit."""
    response = client.post(ORGS, json={"name": "Mine", "owner_email": "Member@example.com"},
                           headers=world.headers("member"))
    assert assert_success(response, 201)["data"]["role"] == "owner"


@pytest.mark.parametrize("payload, field", [
    ({"name": "X", "owner_email": "outsider@example.com", "owner_user_id": "x"}, "_schema"),
    ({"name": "X", "owner_email": "nobody@example.com"}, "owner_email"),
    ({"name": "X", "owner_user_id": "nobody"}, "owner_user_id"),
    ({"name": "X", "owner_email": "not-an-email"}, "owner_email"),
])
def test_owner_fields_bad_input_is_422(client, world, payload, field):
    """Both owner fields, or an owner that is no active account, is a 422 naming the field."""
    body = assert_error(client.post(ORGS, json=payload, headers=world.headers("platform_admin")), 422,
                        "VALIDATION_ERROR")
    assert field in body["error"]["details"]


def test_users_token_without_the_scope_cannot_create(app, client, factories, world):
    """A platform admin's token with manage:users only: 403 insufficient_scope."""
    token = user_access_token(app, client, factories, world.users["platform_admin"], "openid manage:users")
    response = client.post(ORGS, json={"name": "Nope"}, headers=bearer(token))
    assert_error(response, 403, "FORBIDDEN")
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


# -- ETags and If-Match ---------------------------------------------------------------------------

def etag_of(client, url: str, headers: dict) -> str:
    response = client.get(url, headers=headers)
    assert response.status_code == 200 and response.headers["ETag"].startswith('"')
    return response.headers["ETag"]


def test_etag_is_the_organizations_and_moves_with_it(client, world):
    """Every caller sees one ETag (the caller's role is not the organization's state); a PATCH answers the
    new one, which a GET then returns too; create answers one."""
    owner, member = world.headers("owner"), world.headers("member")
    first = etag_of(client, world.url, owner)
    assert etag_of(client, world.url, member) == first
    patched = client.patch(world.url, json={"description": "New"}, headers={**owner, "If-Match": first})
    assert patched.status_code == 200 and patched.headers["ETag"] not in (None, first)
    assert etag_of(client, world.url, member) == patched.headers["ETag"]
    created = client.post(ORGS, json={"name": "Fresh"}, headers=owner)
    assert created.headers["ETag"] == etag_of(client, f"{ORGS}/{created.get_json()['data']['id']}", owner)


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_stale_if_match_on_the_organization_is_412_and_changes_nothing(app, client, world, method):
    """RFC 9110 13.1.1: another caller changed it since the GET; the answer carries the current ETag."""
    owner = world.headers("owner")
    stale = etag_of(client, world.url, owner)
    meanwhile = client.patch(world.url, json={"name": "Changed meanwhile"}, headers=world.headers("admin"))
    assert meanwhile.status_code == 200
    before = snapshot(app, world.org_id)
    response = getattr(client, method)(world.url, json={"name": "Overwrite"} if method == "patch" else None,
                                       headers={**owner, "If-Match": stale})
    assert_error(response, 412, "PRECONDITION_FAILED")
    assert response.headers["ETag"] == etag_of(client, world.url, owner)
    assert snapshot(app, world.org_id) == before


@pytest.mark.parametrize("if_match", ["current", "*", "list"])
def test_matching_if_match_on_the_organization_writes(app, client, world, if_match):
    """The current ETag, one of a list, or `*` lets PATCH and then DELETE through."""
    owner = world.headers("owner")
    current = etag_of(client, world.url, owner)
    header = {"current": current, "*": "*", "list": f'"other", {current}'}[if_match]
    assert client.patch(world.url, json={"name": "Kept"}, headers={**owner, "If-Match": header}).status_code == 200
    header = {"current": etag_of(client, world.url, owner), "*": "*",
              "list": f'"other", {etag_of(client, world.url, owner)}'}[if_match]
    assert_success(client.delete(world.url, headers={**owner, "If-Match": header}))
    assert snapshot(app, world.org_id)[0] is None


def test_weak_etag_never_matches(client, world):
    """Strong comparison (RFC 9110 8.8.3.2): W/ of the current ETag is a 412."""
    owner = world.headers("owner")
    weak = "W/" + etag_of(client, world.url, owner)
    assert_error(client.patch(world.url, json={"name": "X"}, headers={**owner, "If-Match": weak}), 412,
                 "PRECONDITION_FAILED")


def test_a_refused_caller_gets_its_refusal_not_412(client, world):
    """Rights are checked before the precondition: a member with a stale ETag is told 403."""
    response = client.patch(world.url, json={"name": "X"}, headers={**world.headers("member"), "If-Match": '"stale"'})
    assert_error(response, 403, "FORBIDDEN")


def test_member_etag_guards_role_changes(app, client, world):
    """A role PATCH with a stale membership ETag is 412 and keeps the role; with the current one it writes and
    answers the new ETag, which GET of the member returns."""
    owner, target = world.headers("owner"), world.users["member2"]
    member_url = f"{world.url}/members/{target.id}"
    stale = etag_of(client, member_url, owner)
    assert client.patch(f"{member_url}/role", json={"role": "admin"}, headers=owner).status_code == 200
    refused = client.patch(f"{member_url}/role", json={"role": "member"}, headers={**owner, "If-Match": stale})
    assert_error(refused, 412, "PRECONDITION_FAILED")
    assert snapshot(app, world.org_id)[1].count((target.id, "admin")) == 1
    current = etag_of(client, member_url, owner)
    changed = client.patch(f"{member_url}/role", json={"role": "member"}, headers={**owner, "If-Match": current})
    assert assert_success(changed)["data"]["role"] == "member"
    assert changed.headers["ETag"] not in (stale, current)
    assert changed.headers["ETag"] == etag_of(client, member_url, owner)


@pytest.mark.parametrize("if_match, status", [("stale", 412), ("current", 200), ("*", 200)])
def test_member_etag_guards_removal(app, client, world, if_match, status):
    """DELETE of a member honours If-Match: stale 412 (still a member), current or `*` removes."""
    owner, target = world.headers("owner"), world.users["member2"]
    member_url = f"{world.url}/members/{target.id}"
    stale = etag_of(client, member_url, owner)
    client.patch(f"{member_url}/role", json={"role": "admin"}, headers=owner)
    header = {"stale": stale, "current": etag_of(client, member_url, owner), "*": "*"}[if_match]
    response = client.delete(member_url, headers={**owner, "If-Match": header})
    assert response.status_code == status, response.get_json()
    still_member = any(user_id == target.id for user_id, _ in snapshot(app, world.org_id)[1])
    assert still_member == (status == 412)


def test_added_member_answers_its_etag(client, world):
    """POST .../members answers the new membership's ETag, the one its GET returns."""
    owner = world.headers("owner")
    added = client.post(f"{world.url}/members", json={"user_id": world.users["outsider"].id}, headers=owner)
    assert added.status_code == 201
    assert added.headers["ETag"] == etag_of(client, f"{world.url}/members/{world.users['outsider'].id}", owner)


def test_get_of_a_non_member_is_404(client, world):
    """GET .../members/<id> of someone outside the organization."""
    response = client.get(f"{world.url}/members/{world.users['outsider'].id}", headers=world.headers("member"))
    assert_error(response, 404, "NOT_FOUND")


@pytest.mark.postgres
@pytest.mark.parametrize("resource", ["organization", "member_role"])
def test_concurrent_patches_with_one_etag_give_one_200(app, world, resource):
    """RFC 9110 13.1.1 on PostgreSQL: six PATCHes sent together over HTTP with the same If-Match (each its
    own API session): the row is read FOR UPDATE before the check, so exactly one writes and the rest get 412."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    import requests

    from tests.servers import LiveServer

    writers = 6
    with app.app_context():
        owner = db.session.get(User, world.users["owner"].id)
        headers = [bearer(create_session(owner)[1]) for _ in range(writers)]
        db.session.commit()
    member_url = f"{world.url}/members/{world.users['member2'].id}"
    url, bodies = ((world.url, [{"name": f"Writer {n}"} for n in range(writers)]) if resource == "organization"
                   else (f"{member_url}/role", [{"role": ("admin", "owner")[n % 2]} for n in range(writers)]))
    etag = etag_of(app.test_client(), world.url if resource == "organization" else member_url, headers[0])
    live = LiveServer(app)
    live.start()
    barrier = Barrier(writers)

    def patch(n: int):
        barrier.wait()
        return requests.patch(live.url + url, json=bodies[n], timeout=30, headers={**headers[n], "If-Match": etag})

    try:
        with ThreadPoolExecutor(writers) as pool:
            statuses = sorted(response.status_code for response in pool.map(patch, range(writers)))
    finally:
        live.stop()
    assert statuses == [200] + [412] * (writers - 1)
    action = "organization.update" if resource == "organization" else "membership.role_change"
    assert len(audit_rows(app, action)) == 1


@pytest.mark.postgres
def test_two_owners_demoting_each_other_at_once_leave_one_owner(app, factories, world):
    """Membership writes lock the organization first, then the member rows: of two owners demoting each other
    in the same instant one wins and the other, no longer an owner when its turn comes, gets 403; never a
    deadlock's 5xx, never an organization without an owner."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    import requests

    from tests.servers import LiveServer

    owners = [world.users["owner"], world.users["admin"]]
    with app.app_context():
        db.session.get(Membership, _membership_id(world.org_id, owners[1].id)).role = "owner"
        headers = [bearer(create_session(db.session.get(User, owner.id))[1]) for owner in owners]
        db.session.commit()
    live = LiveServer(app)
    live.start()
    barrier = Barrier(2)

    def demote_the_other(n: int):
        barrier.wait()
        return requests.patch(f"{live.url}{world.url}/members/{owners[1 - n].id}/role", json={"role": "member"},
                              headers=headers[n], timeout=30)

    try:
        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(response.status_code for response in pool.map(demote_the_other, range(2)))
    finally:
        live.stop()
    assert statuses == [200, 403]
    assert [role for _, role in snapshot(app, world.org_id)[1]].count("owner") == 1


def _membership_id(organization_id: str, user_id: str) -> str:
    return db.session.scalar(select(Membership.id).where(Membership.organization_id == organization_id,
                                                         Membership.user_id == user_id))
