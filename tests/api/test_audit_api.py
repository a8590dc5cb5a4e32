"""/api/v1/audit and /api/v1/audit/export: filters, cursor pages, NDJSON export and who sees what."""
from __future__ import annotations

import json
import random
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select

from idp.api.conventions import paginate
from idp.extensions import db
from idp.models import AuditEvent, Role
from idp.models.base import new_id
from idp.services import audit_log
from idp.services.audit_log import AuditFilter
from tests.api.envelope_assertions import assert_error, assert_success
from tests.api.service_accounts import access_token_of, bearer, service_account, service_token
from tests.api.test_management_auth import user_token
from tests.oidc.conftest import REDIRECT_URI, basic_auth

T0 = datetime(2020, 3, 1, tzinfo=timezone.utc)
AUDIT = "/api/v1/audit"
EXPORT = "/api/v1/audit/export"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def add_events(app, *events: dict) -> list[str]:
    """Insert audit rows directly (bulk INSERT); each dict overrides the defaults. Returns their ids."""
    blank = dict.fromkeys(("actor_user_id", "target_type", "target_id", "organization_id", "request_id"))
    rows = [{**blank, "id": new_id(), "created_at": at(i), "action": "test.event", "outcome": "success", **event}
            for i, event in enumerate(events)]
    with app.app_context():
        db.session.execute(insert(AuditEvent.__table__), rows)
        db.session.commit()
    return [row["id"] for row in rows]


@pytest.fixture
def world(app, factories, auth_headers):
    """Two organizations, a user of each kind, and events in A, in B and in neither."""
    org_a, org_b = factories.organization(name="A"), factories.organization(name="B")
    people = {"platform_admin": factories.user(is_admin=True), "owner": factories.user(), "admin": factories.user(),
              "member": factories.user(), "outsider": factories.user(), "owner_b": factories.user()}
    for name, role in (("owner", Role.OWNER), ("admin", Role.ADMIN), ("member", Role.MEMBER)):
        factories.membership(org_a, people[name], role)
    factories.membership(org_b, people["owner_b"], Role.OWNER)
    in_a = add_events(app, {"organization_id": org_a.id, "action": "client.created"},
                      {"organization_id": org_a.id, "action": "member.added"})
    in_b = add_events(app, {"organization_id": org_b.id, "action": "client.created", "created_at": at(10)})
    platform = add_events(app, {"action": "user.login", "created_at": at(20)})
    return {"a": org_a, "b": org_b, "in_a": in_a, "in_b": in_b, "platform": platform,
            "headers": {name: auth_headers(user) for name, user in people.items()}, "people": people}


def listed_ids(response) -> list[str]:
    return [event["id"] for event in assert_success(response)["data"]]


def test_platform_admin_sees_every_event_newest_first(client, world):
    """Platform admins read the whole log, newest first, with each event's fields."""
    body = assert_success(client.get(AUDIT, headers=world["headers"]["platform_admin"]))
    assert [event["id"] for event in body["data"]] == [*world["platform"], *world["in_b"], *reversed(world["in_a"])]
    assert body["meta"] == {"pagination": {"next_cursor": None, "limit": 50}}
    event = body["data"][0]
    assert set(event) == set(audit_log.EVENT_COLUMNS) and event["action"] == "user.login"


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_see_only_their_organization(client, world, role):
    """An organization's owners and admins see its events only, with or without the filter."""
    headers = world["headers"][role]
    assert set(listed_ids(client.get(AUDIT, headers=headers))) == set(world["in_a"])
    assert set(listed_ids(client.get(AUDIT, query_string={"organization_id": world["a"].id},
                                     headers=headers))) == set(world["in_a"])


@pytest.mark.parametrize("role", ["owner", "admin", "outsider"])
def test_another_organization_is_not_found(client, world, role):
    """Filtering on an organization the caller is not in is a 404, the same as one that does not exist."""
    headers = world["headers"][role]
    other = assert_error(client.get(AUDIT, query_string={"organization_id": world["b"].id}, headers=headers),
                         404, "NOT_FOUND")
    missing = assert_error(client.get(AUDIT, query_string={"organization_id": new_id()}, headers=headers),
                           404, "NOT_FOUND")
    assert other["message"] == missing["message"]


def test_members_and_outsiders_are_forbidden(client, world):
    """A plain member, or a user in no organization, may not read the audit log."""
    for name in ("member", "outsider"):
        assert_error(client.get(AUDIT, headers=world["headers"][name]), 403, "FORBIDDEN")
        assert_error(client.get(EXPORT, query_string={"since": iso(at(0)), "until": iso(at(60))},
                                headers=world["headers"][name]), 403, "FORBIDDEN")
    assert_error(client.get(AUDIT, query_string={"organization_id": world["a"].id},
                            headers=world["headers"]["member"]), 403, "FORBIDDEN")


def test_owner_of_several_organizations_sees_their_union(client, world, factories):
    """Without a filter, an admin of two organizations sees both organizations' events."""
    factories.membership(world["b"], world["people"]["owner"], Role.ADMIN)
    assert set(listed_ids(client.get(AUDIT, headers=world["headers"]["owner"]))) == {*world["in_a"], *world["in_b"]}


def test_platform_admin_may_filter_on_a_deleted_organization(client, world):
    """The log outlives organizations: a platform admin filters by any id, existing or not."""
    gone = new_id()
    ids = add_events(client.application, {"organization_id": gone})
    assert listed_ids(client.get(AUDIT, query_string={"organization_id": gone},
                                 headers=world["headers"]["platform_admin"])) == ids


@pytest.mark.parametrize("path", [AUDIT, EXPORT])
def test_without_a_token_is_unauthorized(client, path):
    """RFC 6750 3.1: no credentials is a 401 with a Bearer challenge."""
    response = client.get(path)
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    invalid = client.get(path, headers={"Authorization": "Bearer not-a-token"})
    assert_error(invalid, 401, "UNAUTHORIZED")
    assert 'error="invalid_token"' in invalid.headers["WWW-Authenticate"]


def test_filters(client, app, world):
    """Each filter narrows the events to exactly those matching it."""
    actor, target = new_id(), new_id()
    ids = add_events(app, {"action": "user.updated", "actor_user_id": actor, "target_type": "user",
                           "target_id": target, "created_at": at(30)},
                     {"action": "user.updated", "outcome": "failure", "request_id": "req-1", "created_at": at(31)},
                     {"action": "client.deleted", "target_type": "client", "target_id": target, "created_at": at(32)})
    headers = world["headers"]["platform_admin"]
    cases = [
        ({"action": "user.updated"}, [ids[1], ids[0]]),
        ({"actor_user_id": actor}, [ids[0]]),
        ({"target_id": target}, [ids[2], ids[0]]),
        ({"target_type": "user", "target_id": target}, [ids[0]]),
        ({"outcome": "failure"}, [ids[1]]),
        ({"request_id": "req-1"}, [ids[1]]),
        ({"since": iso(at(31)), "until": iso(at(32))}, [ids[1]]),  # since inclusive, until exclusive
        ({"since": "2020-03-01T00:31:00+00:00"}, [ids[2], ids[1]]),
        ({"until": iso(at(1))}, [world["in_a"][0]]),
        ({"action": "client.created", "organization_id": world["b"].id}, world["in_b"]),
    ]
    for query, expected in cases:
        assert listed_ids(client.get(AUDIT, query_string=query, headers=headers)) == expected, query


@pytest.mark.parametrize("query, field", [
    ({"frobnicate": "1"}, "frobnicate"),
    ({"outcome": "maybe"}, "outcome"),
    ({"since": "yesterday"}, "since"),
    ({"since": iso(at(5)), "until": iso(at(5))}, "until"),
    ({"limit": "0"}, "limit"),
    ({"limit": "201"}, "limit"),
    ({"cursor": "forged"}, "cursor"),
    ({"action": "a\x00b"}, "action"),
    ({"action": "x" * 65}, "action"),
])
def test_invalid_query_is_a_validation_error_naming_the_parameter(client, world, query, field):
    """A malformed or unknown parameter is a 422 whose details name it."""
    body = assert_error(client.get(AUDIT, query_string=query, headers=world["headers"]["platform_admin"]),
                        422, "VALIDATION_ERROR")
    assert field in body["error"]["details"], body


def test_unknown_parameters_are_each_named(client, world):
    """All unknown parameters are reported at once, with marshmallow's message."""
    body = assert_error(client.get(AUDIT, query_string={"frobnicate": "1", "colour": "red"},
                                   headers=world["headers"]["platform_admin"]), 422, "VALIDATION_ERROR")
    assert body["error"]["details"] == {"frobnicate": ["Unknown field."], "colour": ["Unknown field."]}


def test_cursor_pages_return_every_event_once(client, app, world):
    """Pages of 3 return each visible event exactly once, newest first, and end with a null next_cursor."""
    add_events(app, *({"created_at": at(40)} for _ in range(7)))  # ties on created_at
    headers = world["headers"]["platform_admin"]
    everything = listed_ids(client.get(AUDIT, query_string={"limit": 200}, headers=headers))
    seen, cursor, pages = [], None, 0
    while True:
        body = assert_success(client.get(AUDIT, query_string={"limit": 3, **({"cursor": cursor} if cursor else {})},
                                         headers=headers))
        seen += [event["id"] for event in body["data"]]
        pages += 1
        assert body["meta"]["pagination"]["limit"] == 3
        cursor = body["meta"]["pagination"]["next_cursor"]
        if cursor is None:
            break
    assert seen == everything and len(seen) == 11 and pages == 4


def test_cursor_keeps_the_callers_visibility(client, world, app):
    """A cursor is a position, not a permission: an owner paging on still sees only their organization."""
    add_events(app, *({"organization_id": world["a"].id, "created_at": at(50 + i)} for i in range(3)))
    headers = world["headers"]["owner"]
    first = assert_success(client.get(AUDIT, query_string={"limit": 2}, headers=headers))
    rest = assert_success(client.get(AUDIT, query_string={"cursor": first["meta"]["pagination"]["next_cursor"]},
                                     headers=headers))
    ids = [event["id"] for event in first["data"] + rest["data"]]
    assert len(ids) == 5 and not set(ids) & {*world["in_b"], *world["platform"]}


def read_export(client, headers, **query) -> list[dict]:
    response = client.get(EXPORT, query_string=query, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/x-ndjson"
    text = response.get_data(as_text=True)
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_export_streams_ndjson_oldest_first(client, world):
    """One JSON event per line, oldest first, in the range and visibility asked for."""
    headers = world["headers"]["platform_admin"]
    events = read_export(client, headers, since=iso(at(0)), until=iso(at(60)))
    assert [event["id"] for event in events] == [*world["in_a"], *world["in_b"], *world["platform"]]
    assert set(events[0]) == set(audit_log.EVENT_COLUMNS) and events[0]["created_at"].startswith("2020-03-01T00:00:00")
    owner = read_export(client, world["headers"]["owner"], since=iso(at(0)), until=iso(at(60)))
    assert [event["id"] for event in owner] == world["in_a"]
    narrow = read_export(client, headers, since=iso(at(1)), until=iso(at(20)), action="client.created")
    assert [event["id"] for event in narrow] == world["in_b"]


def test_export_is_read_in_batches_while_streaming(client, app, world, monkeypatch):
    """The export queries batch by batch as the body is consumed: an event written after the first
    batch was sent, later in the range, is still in the stream; nothing was loaded up front."""
    monkeypatch.setattr(audit_log, "EXPORT_BATCH_SIZE", 2)
    response = client.get(EXPORT, query_string={"since": iso(at(0)), "until": iso(at(60))},
                          headers=world["headers"]["platform_admin"], buffered=False)
    assert response.status_code == 200 and response.is_streamed
    chunks = iter(response.response)
    first = next(chunks)
    assert len(first.splitlines()) == 2
    late = add_events(app, {"created_at": at(59), "action": "late.event"})
    rest = b"".join(chunks).decode().splitlines()
    response.close()
    ids = [json.loads(line)["id"] for line in first.decode().splitlines() + rest]
    assert ids == [*world["in_a"], *world["in_b"], *world["platform"], *late]


@pytest.mark.parametrize("query, fields", [
    ({}, {"since", "until"}),
    ({"since": iso(at(0))}, {"until"}),
    ({"since": iso(at(0)), "until": iso(at(0) + timedelta(days=31, seconds=1))}, {"until"}),
    ({"since": iso(at(10)), "until": iso(at(0))}, {"until"}),
    ({"since": iso(at(0)), "until": iso(at(1)), "limit": "5"}, {"limit"}),
])
def test_export_range_is_required_and_bounded(client, world, query, fields):
    """since and until are required, ordered and at most 31 days apart; errors are envelopes."""
    body = assert_error(client.get(EXPORT, query_string=query, headers=world["headers"]["platform_admin"]),
                        422, "VALIDATION_ERROR")
    assert set(body["error"]["details"]) == fields


def test_export_of_exactly_31_days_is_allowed(client, world):
    events = read_export(client, world["headers"]["platform_admin"], since=iso(at(0)),
                         until=iso(at(0) + timedelta(days=31)))
    assert len(events) == 4


def test_export_is_audited_without_its_rows(client, app, world):
    """An export is itself an audit event naming its range and filters."""
    read_export(client, world["headers"]["owner"], since=iso(at(0)), until=iso(at(60)), action="member.added")
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.exported")).one()
    assert event.actor_user_id == world["people"]["owner"].id and event.target_type == "audit_log"
    assert event.details == {"since": at(0).isoformat(), "until": at(60).isoformat(), "filters": ["action"]}


def test_export_of_another_organization_is_not_found(client, world):
    assert_error(client.get(EXPORT, query_string={"since": iso(at(0)), "until": iso(at(60)),
                                                  "organization_id": world["b"].id},
                            headers=world["headers"]["owner"]), 404, "NOT_FOUND")


def test_openapi_documents_the_audit_operations(client):
    """Both operations, their filters, the NDJSON content type and their errors are in the document."""
    document = client.get("/api/openapi.json").get_json()
    listing, export = document["paths"][AUDIT]["get"], document["paths"][EXPORT]["get"]
    assert {"401", "403", "404", "422"} <= set(listing["responses"]) and {"401", "403", "404", "422"} <= set(
        export["responses"])
    assert "application/x-ndjson" in export["responses"]["200"]["content"]
    names = {parameter["name"] for parameter in listing["parameters"]}
    assert names == {"action", "actor_user_id", "target_type", "target_id", "organization_id", "outcome",
                     "request_id", "since", "until", "limit", "cursor"}
    assert {p["name"] for p in export["parameters"] if p.get("required")} == {"since", "until"}


# -- tokens: service accounts (client_credentials) and users' access tokens ---------------------------

def test_platform_wide_service_account_with_read_audit_sees_every_event(client, factories, world):
    """A service account without an organization (made by a platform admin) reads the whole log."""
    token = service_token(client, factories, "read:audit")
    assert len(listed_ids(client.get(AUDIT, headers=bearer(token)))) == 4


def test_organization_service_account_sees_only_its_organization(client, factories, world):
    """A service account owned by an organization is its admin there: its events only, others are 404."""
    token = service_token(client, factories, "read:audit", organization_id=world["a"].id)
    assert set(listed_ids(client.get(AUDIT, headers=bearer(token)))) == set(world["in_a"])
    assert_error(client.get(AUDIT, query_string={"organization_id": world["b"].id}, headers=bearer(token)),
                 404, "NOT_FOUND")


def test_service_account_export_is_audited_with_its_client_id(client, app, factories, world):
    """The export names the service account in its audit details (it has no user id)."""
    account = service_account(factories, "read:audit", organization_id=world["a"].id)
    events = read_export(client, bearer(access_token_of(client, account)), since=iso(at(0)), until=iso(at(60)))
    assert [event["id"] for event in events] == world["in_a"]
    with app.app_context():
        exported = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.exported")).one()
    assert exported.actor_user_id is None and exported.details["actor_client_id"] == account.client_id


@pytest.mark.parametrize("path", [AUDIT, EXPORT])
def test_service_account_without_read_audit_is_403(client, factories, world, path):
    """RFC 6750 3.1: a token lacking read:audit is 403 insufficient_scope, even platform-wide."""
    token = service_token(client, factories, "manage:clients")
    response = client.get(path, query_string={"since": iso(at(0)), "until": iso(at(60))}, headers=bearer(token))
    assert_error(response, 403, "FORBIDDEN")
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_token_of_another_audience_is_401(client, factories, world):
    """RFC 9068 4: a client_credentials token for the issuer, not the API, is refused."""
    token = service_token(client, factories, "reports:read")
    assert_error(client.get(AUDIT, headers=bearer(token)), 401, "UNAUTHORIZED")


def test_revoked_token_is_401(client, factories, world):
    """RFC 7009 2.1: a revoked service-account token stops working."""
    account = service_account(factories, "read:audit")
    token = access_token_of(client, account)
    assert client.get(AUDIT, headers=bearer(token)).status_code == 200
    assert client.post("/oauth2/revoke", data={"token": token}, headers=basic_auth(account.client_id)).status_code == 200
    assert_error(client.get(AUDIT, headers=bearer(token)), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("who, expected", [("platform_admin", "all"), ("owner", "a"), ("member", None)])
def test_users_access_tokens_with_read_audit(app, client, factories, world, who, expected):
    """A user's token from a first-party client acts as that user: admins all, owners their
    organization, members still 403."""
    rp = factories.client(redirect_uris=[REDIRECT_URI], first_party=True, scope="openid read:audit",
                          grant_types=["authorization_code", "refresh_token"])
    token = user_token(app, client, rp, world["people"][who], "openid read:audit")["access_token"]
    response = client.get(AUDIT, headers=bearer(token))
    if expected is None:
        assert_error(response, 403, "FORBIDDEN")
    else:
        ids = set(listed_ids(response))
        if expected == "all":  # with the flow's own sign-in events
            assert {*world["in_a"], *world["in_b"], *world["platform"]} < ids
        else:
            assert ids == set(world["in_a"])


@pytest.mark.postgres
def test_cursor_walk_of_100k_events_while_others_write(app):
    """Listing 10^5 events by cursor (limit 200) while a writer keeps inserting, older and newer
    events alike, returns each of the original events exactly once and none twice.

    The walk runs the list endpoint's own query and paginate() (opaque cursors included) without the
    HTTP rendering, which alone would take ~30 s for 500 pages on a loaded CI machine.
    """
    original = [{"id": new_id(), "created_at": T0 + timedelta(milliseconds=random.randrange(360_000) * 10),
                 "action": "bulk.event", "outcome": "success"} for _ in range(100_000)]  # many share an instant
    with app.app_context():
        db.session.execute(insert(AuditEvent.__table__), original)
        db.session.commit()
    stop, written = threading.Event(), []

    def keep_writing():
        with app.app_context():
            while not stop.is_set():
                batch = [{"id": new_id(), "created_at": moment, "action": "concurrent.event", "outcome": "success"}
                         for moment in (datetime.now(timezone.utc), T0 + timedelta(seconds=random.randrange(3600)))]
                db.session.execute(insert(AuditEvent.__table__), batch)
                db.session.commit()
                written.extend(batch)
                time.sleep(0.01)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    seen, cursor, pages = [], None, 0
    try:
        with app.test_request_context():
            while True:
                rows, cursor = paginate(audit_log.events_query(AuditFilter(), None), columns=audit_log.ORDER_COLUMNS,
                                        limit=200, cursor=cursor)
                db.session.rollback()  # each page its own transaction, as each request is
                seen += [row.id for row in rows]
                pages += 1
                if cursor is None:
                    break
    finally:
        stop.set()
        writer.join()
    assert len(written) > 100 and len(seen) == len(set(seen))  # nothing twice, concurrent events included
    assert len({row["id"] for row in original} & set(seen)) == 100_000 and pages >= 500


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzzed_audit_queries_as_platform_admin_answer_as_documented(app, world, mode):
    """schemathesis on both audit operations with a platform admin's token (the shared fuzz test's
    user is no admin, so it only reaches their 403): no 5xx, every answer documented, every invalid
    query refused. Cases whose only fault is a broken Authorization header are skipped: the admin's
    real header replaces it, so they are valid requests."""
    import schemathesis
    from hypothesis import HealthCheck, assume, given, settings
    from schemathesis import GenerationMode
    from schemathesis.core.parameters import ParameterLocation

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations() if result.ok().path in (AUDIT, EXPORT)]
    assert len(operations) == 2
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
        @settings(max_examples=50, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            header = case.meta.components.get(ParameterLocation.HEADER)
            assume(header is None or header.mode is not GenerationMode.NEGATIVE)
            case.call_and_validate(headers=world["headers"]["platform_admin"],
                                   excluded_checks=[schemathesis.checks.positive_data_acceptance])

        run()
