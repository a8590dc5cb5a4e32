"""GET /api/v1/admin/organizations: every organization for platform admins, searchable, by cursor.

Who may call it is tests/api/test_management_auth.py; this file is what it answers.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from idp.extensions import db
from idp.models import Membership, Organization, User
from idp.services.sessions import create_session
from tests.api.envelope_assertions import assert_error, assert_success

ADMIN_ORGS = "/api/v1/admin/organizations"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def admin(app):
    with app.app_context():
        user = User(email="root@example.com", name="Root", is_admin=True)
        db.session.add(user)
        db.session.flush()
        headers = {"Authorization": f"Bearer {create_session(user)[1]}"}
        db.session.commit()
    return headers


def make_organizations(app, specs: list[tuple[str, str]], *, same_instant: bool = False) -> list[str]:
    """Organizations (name, slug), the later ones newer (or all created at one instant); their ids."""
    with app.app_context():
        rows = [Organization(name=name, slug=slug, created_at=T0 if same_instant else T0 + timedelta(minutes=n))
                for n, (name, slug) in enumerate(specs)]
        db.session.add_all(rows)
        db.session.commit()
        return [row.id for row in rows]


def walk(client, headers, **params) -> tuple[list[dict], list[dict]]:
    """Every item over all pages, and each page's pagination meta."""
    items, metas, cursor = [], [], None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = assert_success(client.get(ADMIN_ORGS, query_string=query, headers=headers))
        items += body["data"]
        metas.append(body["meta"]["pagination"])
        cursor = body["meta"]["pagination"]["next_cursor"]
        if cursor is None:
            return items, metas
    raise AssertionError("pagination did not end")


def test_lists_every_organization_newest_first_with_member_counts(app, client, admin):
    """Every organization, newest first, each with its number of members of every role."""
    older, newer = make_organizations(app, [("Older Org", "older"), ("Newer Org", "newer")])
    with app.app_context():
        people = [User(email=f"m{n}@example.com", name=f"M{n}") for n in range(3)]
        db.session.add_all(people)
        db.session.flush()
        db.session.add_all([Membership(organization_id=older, user_id=people[0].id, role="owner"),
                            Membership(organization_id=older, user_id=people[1].id, role="admin"),
                            Membership(organization_id=older, user_id=people[2].id, role="member")])
        db.session.commit()
    body = assert_success(client.get(ADMIN_ORGS, headers=admin))
    assert [(item["id"], item["member_count"]) for item in body["data"]] == [(newer, 0), (older, 3)]
    assert set(body["data"][0]) == {"id", "name", "slug", "description", "member_count", "created_at", "updated_at"}
    assert body["meta"] == {"pagination": {"next_cursor": None, "limit": 50}}


def test_search_matches_name_or_slug_case_insensitively(app, client, admin):
    """`q` is a case-insensitive substring of the name or of the slug."""
    by_name, by_slug, _ = make_organizations(app, [("ACME Corporation", "first"), ("Other", "acme-labs"),
                                                   ("Globex", "globex")])
    body = assert_success(client.get(ADMIN_ORGS, query_string={"q": "aCmE"}, headers=admin))
    assert {item["id"] for item in body["data"]} == {by_name, by_slug}
    body = assert_success(client.get(ADMIN_ORGS, query_string={"q": "nothing-like-it"}, headers=admin))
    assert body["data"] == []


def test_search_treats_like_wildcards_as_text(app, client, admin):
    """`%` and `_` in `q` are literal characters, not LIKE wildcards."""
    percent, _ = make_organizations(app, [("100% Pure", "pure"), ("Plain", "plain")])
    body = assert_success(client.get(ADMIN_ORGS, query_string={"q": "%"}, headers=admin))
    assert [item["id"] for item in body["data"]] == [percent]
    assert assert_success(client.get(ADMIN_ORGS, query_string={"q": "_"}, headers=admin))["data"] == []


def test_pages_return_every_organization_once_and_end_with_a_null_cursor(app, client, admin):
    """Cursor pages of 2 over 5 organizations: 3 pages, every organization exactly once, newest first,
    next_cursor null on the last page."""
    ids = make_organizations(app, [(f"Org {n}", f"org-{n}") for n in range(5)])
    items, metas = walk(client, admin, limit=2)
    assert [item["id"] for item in items] == list(reversed(ids))
    assert [meta["limit"] for meta in metas] == [2, 2, 2] and metas[-1]["next_cursor"] is None


def test_pages_are_exact_when_organizations_share_a_creation_instant(app, client, admin):
    """The id breaks ties in the order, so equal created_at values are neither skipped nor repeated."""
    ids = make_organizations(app, [(f"Twin {n}", f"twin-{n}") for n in range(5)], same_instant=True)
    items, _ = walk(client, admin, limit=2)
    assert sorted(item["id"] for item in items) == sorted(ids) and len(items) == 5


def test_search_and_pagination_combine(app, client, admin):
    """The cursor continues the same search."""
    make_organizations(app, [(f"Acme {n}", f"acme-{n}") for n in range(3)] + [("Globex", "globex")])
    items, metas = walk(client, admin, q="acme", limit=2)
    assert sorted(item["slug"] for item in items) == ["acme-0", "acme-1", "acme-2"] and len(metas) == 2


def test_organizations_created_while_paging_do_not_disturb_the_walk(app, client, admin):
    """Keyset pages: an organization created mid-walk (newer than all) is not on later pages, and no
    earlier one is skipped or repeated."""
    ids = make_organizations(app, [(f"Org {n}", f"org-{n}") for n in range(4)])
    first = assert_success(client.get(ADMIN_ORGS, query_string={"limit": 2}, headers=admin))
    with app.app_context():
        db.session.add(Organization(name="Latecomer", slug="latecomer", created_at=T0 + timedelta(days=1)))
        db.session.commit()
    cursor = first["meta"]["pagination"]["next_cursor"]
    second = assert_success(client.get(ADMIN_ORGS, query_string={"limit": 2, "cursor": cursor}, headers=admin))
    assert [item["id"] for item in first["data"] + second["data"]] == list(reversed(ids))
    assert second["meta"]["pagination"]["next_cursor"] is None


@pytest.mark.parametrize("params, field", [
    ({"sort": "name"}, "sort"),
    ({"limit": 0}, "limit"),
    ({"limit": 201}, "limit"),
    ({"limit": "many"}, "limit"),
    ({"cursor": "forged-cursor"}, "cursor"),
    ({"q": ""}, "q"),
    ({"q": "x" * 201}, "q"),
])
def test_bad_query_parameters_are_422_naming_them(client, admin, params, field):
    """An unknown parameter, a limit outside 1..200, a cursor this server did not make, or an empty
    or over-long search is a 422 VALIDATION_ERROR naming the field."""
    body = assert_error(client.get(ADMIN_ORGS, query_string=params, headers=admin), 422, "VALIDATION_ERROR")
    assert field in body["error"]["details"], body["error"]["details"]


def test_the_operation_is_in_the_openapi_document(client):
    """Documented with its scope-bearing security, its query parameters and its errors."""
    operation = client.get("/api/openapi.json").get_json()["paths"][ADMIN_ORGS]["get"]
    assert operation["security"] == [{"bearerAuth": []}]
    assert {parameter["name"] for parameter in operation["parameters"]} >= {"q", "limit", "cursor"}
    assert {"200", "401", "403", "422"} <= set(operation["responses"])


def test_a_cursor_of_another_list_is_a_validation_error(app, client, admin, factories):
    """Clients and organizations both page on (created_at, id), but a clients-list cursor is not a position in
    this list: 422 VALIDATION_ERROR naming `cursor`."""
    make_organizations(app, [(f"Org {n}", f"org-{n}") for n in range(3)])
    for n in range(3):
        factories.client(client_id=f"paged-client-{n}")
    clients_page = assert_success(client.get("/api/v1/clients", query_string={"limit": 1}, headers=admin))
    foreign = clients_page["meta"]["pagination"]["next_cursor"]
    assert foreign is not None
    response = client.get(ADMIN_ORGS, query_string={"cursor": foreign}, headers=admin)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert list(response.get_json()["error"]["details"]) == ["cursor"]
