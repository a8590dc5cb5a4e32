"""/api/v1/organizations: organizations, members, roles and who may change what."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import AuditEvent, Membership, OAuthClient, Organization, User
from idp.services.sessions import create_session
from tests.api.envelope_assertions import assert_error

ORGS = "/api/v1/organizations"



def audit_rows(app, action: str, outcome: str = "success") -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.action == action, AuditEvent.outcome == outcome)
        return list(db.session.scalars(query.order_by(AuditEvent.created_at)))


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def role_of(app, organization_id: str, user_id: str) -> str | None:
    with app.app_context():
        query = select(Membership.role).where(Membership.organization_id == organization_id,
                                              Membership.user_id == user_id)
        return db.session.scalar(query)


@pytest.fixture
def world(app):
    """Acme Corp with an owner, an admin and a member; an outsider; a platform admin outside it.

    Built in one transaction (not one commit per row) to keep the many matrix tests quick.
    """
    with app.app_context():
        org = Organization(name="Acme Corp", slug="acme-corp")
        users = {name: User(email=f"{name}@example.com", name=name.title(), is_admin=name == "platform_admin")
                 for name in ("owner", "admin", "member", "outsider", "platform_admin")}
        db.session.add_all([org, *users.values()])
        db.session.flush()
        db.session.add_all(Membership(organization_id=org.id, user_id=users[role].id, role=role)
                           for role in ("owner", "admin", "member"))
        headers = {name: {"Authorization": f"Bearer {create_session(user)[1]}"} for name, user in users.items()}
        db.session.commit()
        people = {name: SimpleNamespace(id=user.id, email=user.email) for name, user in users.items()}
        return SimpleNamespace(org=SimpleNamespace(id=org.id), users=people, headers=headers, url=f"{ORGS}/{org.id}")


# create -----------------------------------------------------------------------------------------

def test_create_makes_the_caller_owner_and_derives_the_slug(app, client, factories, auth_headers):
    """201 with the organization; the creator is its owner; the change is audited with organization_id."""
    user = factories.user()
    response = client.post(ORGS, json={"name": "Globex Corporation", "description": "Widgets"},
                           headers=auth_headers(user))
    body = response.get_json()
    assert response.status_code == 201 and body["success"] is True and body["code"] == 201
    data = body["data"]
    assert data["name"] == "Globex Corporation" and data["slug"] == "globex-corporation"
    assert data["description"] == "Widgets" and data["role"] == "owner" and data["id"]
    assert role_of(app, data["id"], user.id) == "owner"
    [event] = audit_rows(app, "organization.create")
    assert event.organization_id == data["id"] and event.actor_user_id == user.id


def test_create_gives_a_free_slug_when_the_name_is_taken(client, factories, auth_headers):
    """Two organizations with one name get distinct slugs."""
    headers = auth_headers(factories.user())
    slugs = [client.post(ORGS, json={"name": "Initech"}, headers=headers).get_json()["data"]["slug"]
             for _ in range(3)]
    assert slugs == ["initech", "initech-2", "initech-3"]


def test_create_with_a_given_slug_and_a_taken_one(app, client, factories, auth_headers):
    """A given slug is used as is; a taken one is a 409 naming the field, with nothing written."""
    headers = auth_headers(factories.user())
    assert client.post(ORGS, json={"name": "A", "slug": "shared"}, headers=headers).status_code == 201
    body = assert_error(client.post(ORGS, json={"name": "B", "slug": "shared"}, headers=headers), 409, "CONFLICT")
    assert "slug" in body["error"]["details"]
    assert count(app, Organization) == 1 and count(app, Membership) == 1


@pytest.mark.parametrize("name, slug", [
    ("Café Müller & Söhne", "cafe-muller-sohne"),
    ("東京株式会社", "org"),
    ("  Spaced   Out  ", "spaced-out"),
])
def test_create_keeps_unicode_names_and_makes_ascii_slugs(client, factories, auth_headers, name, slug):
    """Unicode names are stored verbatim (trimmed); the slug is ASCII."""
    data = client.post(ORGS, json={"name": name}, headers=auth_headers(factories.user())).get_json()["data"]
    assert data["name"] == name.strip() and data["slug"] == slug


def test_create_stores_sql_looking_names_verbatim(app, client, factories, auth_headers):
    """SQL-looking text is data, nothing more."""
    name = "Robert'); DROP TABLE organizations;--"
    data = client.post(ORGS, json={"name": name}, headers=auth_headers(factories.user())).get_json()["data"]
    assert data["name"] == name and count(app, Organization) == 1


@pytest.mark.parametrize("payload, field", [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "Evil\r\nX-Injected: 1"}, "name"),
    ({"name": "Nul\x00byte"}, "name"),
    ({"name": 42}, "name"),
    ({"name": "Ok", "slug": "Not A Slug"}, "slug"),
    ({"name": "Ok", "slug": "-leading"}, "slug"),
    ({"name": "Ok", "slug": "x" * 101}, "slug"),
    ({"name": "Ok", "description": "d" * 1001}, "description"),
    ({"name": "Ok", "owner_id": "someone"}, "owner_id"),
])
def test_create_bad_input_is_422_per_field_and_writes_nothing(app, client, factories, auth_headers, payload, field):
    """Bad fields answer 422 with the field named under error.details; no row is written."""
    body = assert_error(client.post(ORGS, json=payload, headers=auth_headers(factories.user())), 422,
                        "VALIDATION_ERROR")
    assert field in body["error"]["details"]
    assert count(app, Organization) == 0 and count(app, Membership) == 0


def test_create_needs_a_bearer_token(app, client):
    """No token: 401 with a WWW-Authenticate challenge, nothing written."""
    response = client.post(ORGS, json={"name": "Nope"})
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert count(app, Organization) == 0


# read -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("who, role", [("owner", "owner"), ("admin", "admin"), ("member", "member"),
                                       ("platform_admin", None)])
def test_members_and_platform_admins_read_the_organization(client, world, who, role):
    """Every member, and a platform admin, reads the organization with their own role."""
    response = client.get(world.url, headers=world.headers[who])
    data = response.get_json()["data"]
    assert response.status_code == 200 and data["slug"] == "acme-corp" and data["role"] == role


def test_outsider_cannot_tell_an_organization_exists(client, world):
    """An outsider gets the very same 404 for a real organization as for a missing one."""
    real = assert_error(client.get(world.url, headers=world.headers["outsider"]), 404, "NOT_FOUND")
    missing = assert_error(client.get(f"{ORGS}/does-not-exist", headers=world.headers["outsider"]), 404,
                           "NOT_FOUND")
    assert real["message"] == missing["message"] and real["error"] == missing["error"]


@pytest.mark.parametrize("who", ["owner", "admin", "member", "platform_admin"])
def test_member_list_is_readable_by_members(client, world, who):
    """Members list everyone with their role, on one page when they fit (next_cursor null)."""
    body = client.get(f"{world.url}/members", headers=world.headers[who]).get_json()
    assert sorted(m["role"] for m in body["data"]) == ["admin", "member", "owner"]
    assert body["meta"] == {"pagination": {"next_cursor": None, "limit": 50}}
    [owner] = [m for m in body["data"] if m["role"] == "owner"]
    assert owner["user_id"] == world.users["owner"].id
    assert owner["email"] == world.users["owner"].email and owner["joined_at"]


def add_members(app, organization_id: str, names: list[str]) -> list[str]:
    """Members added straight to the database, one commit each (so each is newer than the last)."""
    ids = []
    with app.app_context():
        for name in names:
            user = User(email=f"{name}@example.com", name=name)
            db.session.add(user)
            db.session.flush()
            db.session.add(Membership(organization_id=organization_id, user_id=user.id, role="member"))
            db.session.commit()
            ids.append(user.id)
    return ids


def test_member_pages_walk_every_member_once_while_members_join(app, client, world):
    """Newest first, `limit` per page; members who join mid-walk land before the cursor, so the walk
    returns every member that existed when it started exactly once (issue #11 conventions)."""
    existing = {*(world.users[role].id for role in ("owner", "admin", "member")),
                *add_members(app, world.org.id, [f"early{n}" for n in range(4)])}
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get(f"{world.url}/members", query_string=query, headers=world.headers["member"]).get_json()
        assert len(body["data"]) <= 2 and body["meta"]["pagination"]["limit"] == 2
        seen += [m["user_id"] for m in body["data"]]
        add_members(app, world.org.id, [f"late{pages}"])
        pages, cursor = pages + 1, body["meta"]["pagination"]["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and set(seen) == existing and pages == 4


@pytest.mark.parametrize("query, field", [({"limit": 201}, "limit"), ({"limit": 0}, "limit"),
                                          ({"cursor": "tampered"}, "cursor"), ({"colour": "red"}, "colour")])
def test_member_list_refuses_a_bad_page_request(client, world, query, field):
    """422 VALIDATION_ERROR naming the parameter: limit is 1 to 200, a cursor is only ever one we made."""
    body = assert_error(client.get(f"{world.url}/members", query_string=query, headers=world.headers["owner"]),
                        422, "VALIDATION_ERROR")
    assert field in body["error"]["details"]


def test_member_list_refuses_an_altered_cursor(client, world):
    """A real cursor with its position altered fails its signature: 422 naming cursor."""
    body = client.get(f"{world.url}/members", query_string={"limit": 1}, headers=world.headers["owner"]).get_json()
    cursor = body["meta"]["pagination"]["next_cursor"]
    altered = ("f" if cursor[0] != "f" else "g") + cursor[1:]  # the first character: its every bit counts
    response = client.get(f"{world.url}/members", query_string={"limit": 1, "cursor": altered},
                          headers=world.headers["owner"])
    assert "cursor" in assert_error(response, 422, "VALIDATION_ERROR")["error"]["details"]


def test_outsider_cannot_list_members(client, world):
    """The member list of someone else's organization is a 404."""
    assert_error(client.get(f"{world.url}/members", headers=world.headers["outsider"]), 404, "NOT_FOUND")


# update -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("who, status", [("owner", 200), ("admin", 200), ("platform_admin", 200),
                                         ("member", 403), ("outsider", 404)])
def test_update_permission_matrix(app, client, world, who, status):
    """Owners, admins and platform admins edit the organization; members get 403, outsiders 404."""
    response = client.patch(world.url, json={"name": "Acme Renamed"}, headers=world.headers[who])
    assert response.status_code == status
    with app.app_context():
        name = db.session.get(Organization, world.org.id).name
    assert name == ("Acme Renamed" if status == 200 else "Acme Corp")


def test_update_changes_fields_and_audits_them(app, client, world):
    """PATCH changes the given fields only and records which ones changed."""
    response = client.patch(world.url, json={"slug": "acme-new", "description": None},
                            headers=world.headers["admin"])
    data = response.get_json()["data"]
    assert response.status_code == 200 and data["slug"] == "acme-new" and data["name"] == "Acme Corp"
    [event] = audit_rows(app, "organization.update")
    assert event.organization_id == world.org.id and event.details == {"fields": ["slug"]}


def test_update_to_a_taken_slug_is_409(client, world, factories):
    """Another organization's slug cannot be taken over."""
    factories.organization(slug="taken")
    body = assert_error(client.patch(world.url, json={"slug": "taken"}, headers=world.headers["owner"]), 409,
                        "CONFLICT")
    assert "slug" in body["error"]["details"]


@pytest.mark.parametrize("payload, field", [({}, "_schema"), ({"name": None}, "name"), ({"name": "a\nb"}, "name"),
                                            ({"slug": "UPPER"}, "slug"), ({"id": "x"}, "id")])
def test_update_bad_input_is_422(client, world, payload, field):
    """An empty or invalid PATCH is a 422 naming the field."""
    body = assert_error(client.patch(world.url, json=payload, headers=world.headers["owner"]), 422,
                        "VALIDATION_ERROR")
    assert field in body["error"]["details"]


def test_member_denied_update_is_audited_as_failure(app, client, world):
    """A refused change leaves a failure audit row with the organization id."""
    client.patch(world.url, json={"name": "Mine now"}, headers=world.headers["member"])
    [event] = audit_rows(app, "organization.update", outcome="failure")
    assert event.organization_id == world.org.id and event.actor_user_id == world.users["member"].id


# delete -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("who, status", [("owner", 200), ("platform_admin", 200), ("admin", 403),
                                         ("member", 403), ("outsider", 404)])
def test_delete_permission_matrix(app, client, world, who, status):
    """Only owners (and platform admins) delete; admins and members get 403, outsiders 404."""
    response = client.delete(world.url, headers=world.headers[who])
    assert response.status_code == status
    assert count(app, Organization) == (0 if status == 200 else 1)


def test_delete_removes_memberships_detaches_and_deactivates_clients_and_audits(app, client, world, factories):
    """Deleting drops every membership, keeps the org's OAuth clients detached and deactivated (a client
    without an organization is a platform client: none wakes up as one), and is audited."""
    factories.client(client_id="acme-app", organization_id=world.org.id)
    assert client.delete(world.url, headers=world.headers["owner"]).get_json()["success"] is True
    assert count(app, Membership) == 0
    with app.app_context():
        row = db.session.execute(select(OAuthClient.organization_id, OAuthClient.is_active)
                                 .where(OAuthClient.client_id == "acme-app")).one()
    assert tuple(row) == (None, False)
    [event] = audit_rows(app, "organization.delete")
    assert event.organization_id == world.org.id and event.details["slug"] == "acme-corp"
    assert event.details["clients_deactivated"] == 1
    assert client.get(world.url, headers=world.headers["owner"]).status_code == 404


# add members ------------------------------------------------------------------------------------

@pytest.mark.parametrize("who, role, status", [
    ("owner", "member", 201), ("owner", "admin", 201), ("owner", "owner", 201),
    ("admin", "member", 201), ("admin", "admin", 201), ("admin", "owner", 403),
    ("platform_admin", "owner", 201), ("member", "member", 403), ("outsider", "member", 404),
])
def test_add_member_permission_matrix(app, client, world, factories, who, role, status):
    """Owners and admins add members; only owners grant ownership; members 403; outsiders 404."""
    newcomer = factories.user()
    response = client.post(f"{world.url}/members", json={"user_id": newcomer.id, "role": role},
                           headers=world.headers[who])
    assert response.status_code == status, response.get_json()
    assert role_of(app, world.org.id, newcomer.id) == (role if status == 201 else None)


def test_add_member_by_email_any_case_defaults_to_member(app, client, world, factories):
    """An existing account is found by email in any case; the default role is member; audited."""
    newcomer = factories.user(email="new.person@example.com")
    response = client.post(f"{world.url}/members", json={"email": "New.Person@EXAMPLE.com"},
                           headers=world.headers["admin"])
    data = response.get_json()["data"]
    assert response.status_code == 201 and data["user_id"] == newcomer.id and data["role"] == "member"
    assert data["email"] == "new.person@example.com"
    [event] = audit_rows(app, "membership.add")
    assert event.organization_id == world.org.id and event.target_id == newcomer.id
    assert event.details == {"role": "member"}


def test_add_existing_member_is_409(client, world):
    """Someone already in the organization cannot be added twice."""
    response = client.post(f"{world.url}/members", json={"user_id": world.users["member"].id},
                           headers=world.headers["owner"])
    assert_error(response, 409, "CONFLICT")


@pytest.mark.parametrize("payload, field", [
    ({"email": "nobody@example.com"}, "email"),
    ({"user_id": "no-such-user"}, "user_id"),
    ({}, "_schema"),
    ({"email": "a@example.com", "user_id": "x"}, "_schema"),
    ({"email": "not-an-email"}, "email"),
    ({"email": "a@example.com\r\nBcc: x@example.com"}, "email"),
    ({"user_id": "x", "role": "superuser"}, "role"),
    ({"user_id": "x" * 37}, "user_id"),
])
def test_add_member_bad_input_is_422(app, client, world, payload, field):
    """Unknown accounts, missing or double identities and bad roles are 422 naming the field."""
    body = assert_error(client.post(f"{world.url}/members", json=payload, headers=world.headers["owner"]), 422,
                        "VALIDATION_ERROR")
    assert field in body["error"]["details"]
    assert count(app, Membership) == 3


def test_add_inactive_account_is_refused_like_a_missing_one(client, world, factories):
    """A deactivated account cannot be added, and the answer does not say it exists."""
    inactive = factories.user(email="gone@example.com", is_active=False)
    by_email = client.post(f"{world.url}/members", json={"email": "gone@example.com"}, headers=world.headers["owner"])
    by_id = client.post(f"{world.url}/members", json={"user_id": inactive.id}, headers=world.headers["owner"])
    missing = client.post(f"{world.url}/members", json={"email": "never@example.com"}, headers=world.headers["owner"])
    assert by_email.get_json()["error"] == missing.get_json()["error"]
    assert by_id.status_code == 422


# remove members ---------------------------------------------------------------------------------

@pytest.mark.parametrize("who, target, status", [
    ("owner", "admin", 200), ("owner", "member", 200),
    ("admin", "member", 200), ("admin", "admin", 200), ("admin", "owner", 403),
    ("member", "admin", 403), ("member", "member", 200),
    ("platform_admin", "member", 200), ("outsider", "member", 404),
])
def test_remove_member_permission_matrix(app, client, world, who, target, status):
    """Managers remove others (admins never an owner); a member may only leave; outsiders get 404."""
    target_id = world.users[target].id
    response = client.delete(f"{world.url}/members/{target_id}", headers=world.headers[who])
    assert response.status_code == status, response.get_json()
    assert (role_of(app, world.org.id, target_id) is None) == (status == 200)


def test_member_may_leave_and_it_is_audited(app, client, world):
    """Removing yourself is leaving; the audit row says so."""
    member = world.users["member"]
    assert client.delete(f"{world.url}/members/{member.id}", headers=world.headers["member"]).status_code == 200
    [event] = audit_rows(app, "membership.remove")
    assert event.organization_id == world.org.id and event.details == {"role": "member", "left": True}


def test_owner_removes_another_owner(client, world, factories):
    """With two owners, one owner may remove the other."""
    second = factories.user()
    factories.membership(world.org, second, "owner")
    assert client.delete(f"{world.url}/members/{second.id}", headers=world.headers["owner"]).status_code == 200


@pytest.mark.parametrize("who", ["owner", "platform_admin"])
def test_last_owner_cannot_be_removed(app, client, world, who):
    """The only owner can neither leave nor be removed, even by a platform admin: 409."""
    owner_id = world.users["owner"].id
    assert_error(client.delete(f"{world.url}/members/{owner_id}", headers=world.headers[who]), 409, "CONFLICT")
    assert role_of(app, world.org.id, owner_id) == "owner"


def test_remove_unknown_member_is_404(client, world):
    """A user who is not a member cannot be removed."""
    response = client.delete(f"{world.url}/members/{world.users['outsider'].id}", headers=world.headers["owner"])
    assert_error(response, 404, "NOT_FOUND")


# change roles -----------------------------------------------------------------------------------

@pytest.mark.parametrize("who, target, role, status", [
    ("owner", "member", "admin", 200), ("owner", "member", "owner", 200), ("owner", "admin", "member", 200),
    ("admin", "member", "admin", 200), ("admin", "admin", "member", 200),
    ("admin", "member", "owner", 403), ("admin", "owner", "member", 403), ("admin", "admin", "owner", 403),
    ("member", "member", "admin", 403), ("member", "admin", "member", 403),
    ("platform_admin", "member", "owner", 200), ("outsider", "member", "admin", 404),
])
def test_change_role_permission_matrix(app, client, world, who, target, role, status):
    """Managers change roles; only owners grant or take away ownership; members 403; outsiders 404."""
    target_id = world.users[target].id
    response = client.patch(f"{world.url}/members/{target_id}/role", json={"role": role},
                            headers=world.headers[who])
    assert response.status_code == status, response.get_json()
    assert role_of(app, world.org.id, target_id) == (role if status == 200 else target)


def test_change_role_returns_member_and_audits_from_to(app, client, world):
    """The updated member comes back; the audit row has from/to and the organization id."""
    member = world.users["member"]
    response = client.patch(f"{world.url}/members/{member.id}/role", json={"role": "admin"},
                            headers=world.headers["owner"])
    assert response.get_json()["data"]["role"] == "admin"
    [event] = audit_rows(app, "membership.role_change")
    assert event.organization_id == world.org.id and event.details == {"from": "member", "to": "admin"}


def test_setting_the_same_role_changes_nothing(app, client, world):
    """Re-applying a member's current role is a 200 without an audit row."""
    member = world.users["member"]
    response = client.patch(f"{world.url}/members/{member.id}/role", json={"role": "member"},
                            headers=world.headers["owner"])
    assert response.status_code == 200 and audit_rows(app, "membership.role_change") == []


@pytest.mark.parametrize("who", ["owner", "platform_admin"])
def test_last_owner_cannot_be_demoted(app, client, world, who):
    """The only owner cannot be demoted, by themself or a platform admin: 409."""
    owner_id = world.users["owner"].id
    response = client.patch(f"{world.url}/members/{owner_id}/role", json={"role": "admin"},
                            headers=world.headers[who])
    assert_error(response, 409, "CONFLICT")
    assert role_of(app, world.org.id, owner_id) == "owner"


def test_owner_can_step_down_once_another_owner_exists(app, client, world):
    """After promoting a second owner, the first may demote themself."""
    owner, member = world.users["owner"], world.users["member"]
    client.patch(f"{world.url}/members/{member.id}/role", json={"role": "owner"}, headers=world.headers["owner"])
    response = client.patch(f"{world.url}/members/{owner.id}/role", json={"role": "member"},
                            headers=world.headers["owner"])
    assert response.status_code == 200 and role_of(app, world.org.id, owner.id) == "member"


@pytest.mark.parametrize("payload", [{}, {"role": "root"}, {"role": None}, {"role": "owner", "extra": 1}])
def test_change_role_bad_input_is_422(client, world, payload):
    """A missing, unknown or null role is a 422."""
    response = client.patch(f"{world.url}/members/{world.users['member'].id}/role", json=payload,
                            headers=world.headers["owner"])
    assert_error(response, 422, "VALIDATION_ERROR")


def test_change_role_of_non_member_is_404(client, world):
    """Only members have a role to change."""
    response = client.patch(f"{world.url}/members/{world.users['outsider'].id}/role", json={"role": "admin"},
                            headers=world.headers["owner"])
    assert_error(response, 404, "NOT_FOUND")
