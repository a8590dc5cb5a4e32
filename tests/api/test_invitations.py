"""/api/v1/organizations/<id>/invitations: invite, list, get, resend, revoke; the permission matrix; audit."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, Invitation
from tests.api.envelope_assertions import assert_error, assert_success
from tests.api.service_accounts import service_token
from tests.web.helpers import link_in

INVITATION_FIELDS = {"id", "organization_id", "email", "role", "status", "invited_by", "created_at", "expires_at",
                     "last_sent_at", "send_count", "accepted_at", "accepted_by", "revoked_at"}


@pytest.fixture
def mail_app(make_app, smtp_sink):
    """The app mailing through the real SMTP sink, links rooted at http://localhost like the test client."""
    return make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, ISSUER="http://localhost")


@pytest.fixture
def api(mail_app):
    return mail_app.test_client()


@pytest.fixture
def org(factories):
    return factories.organization(name="Acme Corp")


@pytest.fixture
def people(factories, org):
    """An owner, an admin, a member of `org`, an outsider and a platform admin who is not a member."""
    found = {}
    for role in ("owner", "admin", "member"):
        found[role] = factories.user(email=f"{role}@acme.example")
        factories.membership(org, found[role], role)
    found["outsider"] = factories.user(email="outsider@elsewhere.example")
    found["platform_admin"] = factories.user(email="root@idp.example", is_admin=True)
    return found


@pytest.fixture
def headers(people, auth_headers, mail_app):
    return {name: auth_headers(user, mail_app) for name, user in people.items()}


def url(org, *parts: str) -> str:
    return "/".join([f"/api/v1/organizations/{org.id}/invitations", *parts])


def invite(api, org, headers, email="ada@example.com", role="member"):
    response = api.post(url(org), json={"email": email, "role": role}, headers=headers)
    response.close()  # as a WSGI server does once the body is sent: the mail leaves then
    return response


def events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def path_of(link: str) -> str:
    """The link's path and query (the token rides in the query string, which access logs leave out)."""
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def test_owner_invites_an_address_and_it_is_mailed_a_link(api, mail_app, org, headers, people, smtp_sink):
    """201 with the invitation (never the token or its hash) and an ETag; the address gets the link; audited."""
    response = invite(api, org, headers["owner"], email="Ada@Example.com", role="admin")
    body = assert_success(response, 201)
    data = body["data"]
    assert set(data) == INVITATION_FIELDS and response.headers["ETag"].startswith('"')
    assert (data["email"], data["role"], data["status"], data["send_count"]) == ("ada@example.com", "admin", "open", 1)
    assert data["invited_by"] == people["owner"].id and data["accepted_at"] is None
    message = smtp_sink.wait_for(1)[0]
    assert message["To"] == "ada@example.com" and "Acme Corp" in message["Subject"]
    link = link_in(message, "/invitations?token=")
    with mail_app.app_context():
        stored = db.session.get(Invitation, data["id"])
    assert path_of(link).split("token=", 1)[1] not in response.get_data(as_text=True)
    assert stored.token_hash not in response.get_data(as_text=True)
    assert "Join Acme Corp" in api.get(path_of(link)).get_data(as_text=True)
    (event,) = events(mail_app, "organization.invitation_created")
    assert (event.actor_user_id, event.target_type, event.target_id, event.organization_id) == (
        people["owner"].id, "invitation", data["id"], org.id)
    assert event.details == {"role": "admin"}


def test_owner_may_invite_an_owner(api, org, headers):
    """Only owners grant ownership, by invitation too."""
    assert assert_success(invite(api, org, headers["owner"], role="owner"), 201)["data"]["role"] == "owner"


def test_admin_invites_members_and_admins_but_not_owners(api, mail_app, org, headers, people):
    """An admin may invite; an owner invitation from an admin is a 403, audited as a failure."""
    assert_success(invite(api, org, headers["admin"], email="m@example.com"), 201)
    assert_success(invite(api, org, headers["admin"], email="a@example.com", role="admin"), 201)
    assert_error(invite(api, org, headers["admin"], email="o@example.com", role="owner"), 403, "FORBIDDEN")
    (refused,) = [e for e in events(mail_app, "organization.invitation_created") if e.outcome == "failure"]
    assert refused.actor_user_id == people["admin"].id and refused.organization_id == org.id


def test_platform_admin_invites_into_any_organization(api, org, headers):
    """A platform admin outside the organization may invite anyone, owners included."""
    assert_success(invite(api, org, headers["platform_admin"], role="owner"), 201)


@pytest.mark.parametrize("who, status, error_type", [("member", 403, "FORBIDDEN"), ("outsider", 404, "NOT_FOUND")])
def test_members_get_403_and_outsiders_404_on_every_operation(api, mail_app, org, headers, people, who, status,
                                                               error_type):
    """Members may not manage invitations; for outsiders the organization does not exist."""
    created = assert_success(invite(api, org, headers["owner"]), 201)["data"]
    caller = headers[who]
    calls = [api.get(url(org), headers=caller), api.post(url(org), json={"email": "x@example.com"}, headers=caller),
             api.get(url(org, created["id"]), headers=caller), api.delete(url(org, created["id"]), headers=caller),
             api.post(url(org, created["id"], "resend"), headers=caller)]
    for response in calls:
        assert_error(response, status, error_type)
    with mail_app.app_context():
        assert db.session.get(Invitation, created["id"]).send_count == 1


def test_an_unknown_organization_is_404_even_for_a_platform_admin(api, headers):
    """No such organization: 404."""
    assert_error(api.get("/api/v1/organizations/nope/invitations", headers=headers["platform_admin"]), 404,
                 "NOT_FOUND")


def test_without_a_token_every_operation_is_401(api, org):
    """RFC 6750 3.1: no bearer token is a 401 with a Bearer challenge."""
    for response in (api.get(url(org)), api.post(url(org), json={"email": "x@example.com"}),
                     api.get(url(org, "x")), api.delete(url(org, "x")), api.post(url(org, "x", "resend"))):
        assert_error(response, 401, "UNAUTHORIZED")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_service_account_of_the_organization_invites_within_it(api, mail_app, factories, org):
    """A client_credentials token with manage:organizations acts as an admin of its own organization: it
    invites members (audited with its client_id), not owners, and no other organization exists for it."""
    token = service_token(api, factories, "manage:organizations", organization_id=org.id)
    bearer = {"Authorization": f"Bearer {token}"}
    data = assert_success(invite(api, org, bearer), 201)["data"]
    assert data["invited_by"] is None
    (event,) = events(mail_app, "organization.invitation_created")
    assert event.actor_user_id is None and event.details["actor_client_id"].startswith("client-")
    assert_error(invite(api, org, bearer, email="o@example.com", role="owner"), 403, "FORBIDDEN")
    other = factories.organization()
    assert_error(api.get(url(other), headers=bearer), 404, "NOT_FOUND")


def test_service_account_without_the_scope_is_refused(api, factories, org):
    """A token without manage:organizations is a 403 insufficient_scope."""
    token = service_token(api, factories, "manage:clients", organization_id=org.id)
    response = api.get(url(org), headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 403, "FORBIDDEN")
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_platform_wide_service_account_may_invite_owners(api, factories, org):
    """A service account without an organization (made by a platform admin) acts platform-wide."""
    token = service_token(api, factories, "manage:organizations")
    assert_success(invite(api, org, {"Authorization": f"Bearer {token}"}, role="owner"), 201)


def test_an_existing_member_cannot_be_invited(api, org, headers):
    """409 naming `email` when the address already belongs to a member, whatever its case."""
    body = assert_error(invite(api, org, headers["owner"], email="MEMBER@acme.example"), 409, "CONFLICT")
    assert "email" in body["error"]["details"]


def test_an_open_invitation_is_resent_or_revoked_not_duplicated(api, org, headers):
    """A second invitation of an address with an open one is a 409; once revoked, the address may be invited."""
    first = assert_success(invite(api, org, headers["owner"]), 201)["data"]
    body = assert_error(invite(api, org, headers["admin"], role="admin"), 409, "CONFLICT")
    assert "email" in body["error"]["details"]
    assert_success(api.delete(url(org, first["id"]), headers=headers["owner"]))
    assert_success(invite(api, org, headers["owner"]), 201)


@pytest.mark.parametrize("body, field", [({"email": "not-an-address"}, "email"), ({}, "email"),
                                         ({"email": "a@example.com", "role": "king"}, "role"),
                                         ({"email": "a@example.com", "token": "x"}, "token")])
def test_invalid_bodies_are_422_naming_the_field(api, org, headers, body, field):
    """Malformed address, missing address, unknown role, unknown field: 422 VALIDATION_ERROR naming it."""
    response = api.post(url(org), json=body, headers=headers["owner"])
    assert field in assert_error(response, 422, "VALIDATION_ERROR")["error"]["details"]


def test_list_is_newest_first_by_cursor_and_filters_by_status(api, org, headers):
    """Keyset pages of `limit`, newest first, each invitation once; `status` keeps one status."""
    ids = [assert_success(invite(api, org, headers["owner"], email=f"p{n}@example.com"), 201)["data"]["id"]
           for n in range(3)]
    assert_success(api.delete(url(org, ids[0]), headers=headers["owner"]))
    first = assert_success(api.get(url(org) + "?limit=2", headers=headers["admin"]))
    cursor = first["meta"]["pagination"]["next_cursor"]
    second = assert_success(api.get(url(org) + f"?limit=2&cursor={cursor}", headers=headers["admin"]))
    assert second["meta"]["pagination"]["next_cursor"] is None
    assert [row["id"] for row in first["data"] + second["data"]] == ids[::-1]
    revoked = assert_success(api.get(url(org) + "?status=revoked", headers=headers["admin"]))["data"]
    assert [row["id"] for row in revoked] == [ids[0]] and revoked[0]["status"] == "revoked"
    opened = assert_success(api.get(url(org) + "?status=open", headers=headers["admin"]))["data"]
    assert {row["id"] for row in opened} == set(ids[1:])


@pytest.mark.parametrize("query, field", [("cursor=forged", "cursor"), ("status=gone", "status"),
                                          ("limit=0", "limit"), ("sort=email", "sort")])
def test_list_refuses_bad_query_parameters(api, org, headers, query, field):
    """A forged cursor, unknown status, out-of-range limit or unknown parameter is a 422 naming it."""
    body = assert_error(api.get(url(org) + f"?{query}", headers=headers["owner"]), 422, "VALIDATION_ERROR")
    assert field in body["error"]["details"]


def test_list_shows_only_the_organizations_own_invitations(api, factories, org, headers):
    """Another organization's invitations are neither listed nor reachable by id through this one."""
    other = factories.organization()
    owner = factories.user()
    factories.membership(other, owner, "owner")
    mine = assert_success(invite(api, org, headers["owner"]), 201)["data"]
    assert_success(invite(api, other, headers["platform_admin"]), 201)
    assert [row["id"] for row in assert_success(api.get(url(org), headers=headers["owner"]))["data"]] == [mine["id"]]
    assert_error(api.get(url(other, mine["id"]), headers=headers["platform_admin"]), 404, "NOT_FOUND")


def test_get_returns_the_invitation_with_its_etag(api, org, headers):
    """GET answers the invitation and the ETag a DELETE may send in If-Match; an unknown id is a 404."""
    created = invite(api, org, headers["owner"])
    response = api.get(url(org, created.get_json()["data"]["id"]), headers=headers["admin"])
    assert assert_success(response)["data"] == created.get_json()["data"]
    assert response.headers["ETag"] == created.headers["ETag"]
    assert_error(api.get(url(org, "missing"), headers=headers["owner"]), 404, "NOT_FOUND")


def test_resend_mails_a_new_link_and_kills_the_old_one(api, mail_app, org, headers, people, smtp_sink):
    """A resend replaces the token: the first link is dead, the new one works; send_count and audit follow."""
    created = assert_success(invite(api, org, headers["owner"]), 201)["data"]
    old_link = path_of(link_in(smtp_sink.wait_for(1)[0], "/invitations?token="))
    response = api.post(url(org, created["id"], "resend"), headers=headers["admin"])
    response.close()
    data = assert_success(response)["data"]
    assert data["send_count"] == 2 and data["status"] == "open" and data["last_sent_at"] >= created["last_sent_at"]
    new_link = path_of(link_in(smtp_sink.wait_for(2)[1], "/invitations?token="))
    assert new_link != old_link
    assert api.get(old_link).status_code == 400
    assert api.get(new_link).status_code == 200
    (event,) = events(mail_app, "organization.invitation_resent")
    assert event.actor_user_id == people["admin"].id and event.organization_id == org.id
    assert event.details == {"changed": ["expires_at", "last_sent_at", "send_count", "token_hash"]}


def test_only_owners_resend_an_owner_invitation(api, org, headers):
    """Re-sending renews a grant of ownership, so an admin may not."""
    created = assert_success(invite(api, org, headers["owner"], role="owner"), 201)["data"]
    assert_error(api.post(url(org, created["id"], "resend"), headers=headers["admin"]), 403, "FORBIDDEN")
    assert_success(api.post(url(org, created["id"], "resend"), headers=headers["owner"]))


def test_revoke_kills_the_link_and_is_audited(api, mail_app, org, headers, people, smtp_sink):
    """DELETE revokes: status revoked, the link is the invalid-link page, a second DELETE or resend is a 409."""
    created = assert_success(invite(api, org, headers["owner"]), 201)["data"]
    link = path_of(link_in(smtp_sink.wait_for(1)[0], "/invitations?token="))
    data = assert_success(api.delete(url(org, created["id"]), headers=headers["admin"]))["data"]
    assert data["status"] == "revoked" and data["revoked_at"] is not None
    assert api.get(link).status_code == 400
    assert_error(api.delete(url(org, created["id"]), headers=headers["admin"]), 409, "CONFLICT")
    assert_error(api.post(url(org, created["id"], "resend"), headers=headers["owner"]), 409, "CONFLICT")
    (event,) = events(mail_app, "organization.invitation_revoked")
    assert (event.actor_user_id, event.target_id, event.organization_id) == (people["admin"].id, created["id"], org.id)
    assert event.details == {"changed": ["revoked_at"]}


def test_revoke_honours_if_match(api, org, headers):
    """RFC 9110 13.1.1: a DELETE with a stale ETag is a 412 and changes nothing; the current one succeeds."""
    created = invite(api, org, headers["owner"])
    invitation_id, etag = created.get_json()["data"]["id"], created.headers["ETag"]
    resent = api.post(url(org, invitation_id, "resend"), headers=headers["owner"])
    resent.close()
    stale = api.delete(url(org, invitation_id), headers={**headers["owner"], "If-Match": etag})
    assert_error(stale, 412, "PRECONDITION_FAILED")
    current = api.delete(url(org, invitation_id), headers={**headers["owner"], "If-Match": resent.headers["ETag"]})
    assert assert_success(current)["data"]["status"] == "revoked"


def test_accepted_invitation_cannot_be_resent_or_revoked(api, mail_app, org, headers, factories, smtp_sink):
    """Once the invitee joined, the invitation is final: 409 on resend and revoke; the list says accepted."""
    from tests.web.helpers import sign_in, submit

    ada = factories.user(email="ada@example.com")
    created = assert_success(invite(api, org, headers["owner"]), 201)["data"]
    link = path_of(link_in(smtp_sink.wait_for(1)[0], "/invitations?token="))
    browser = mail_app.test_client()
    sign_in(browser, ada.email)
    assert submit(browser, link, {}).status_code == 302
    data = assert_success(api.get(url(org, created["id"]), headers=headers["owner"]))["data"]
    assert data["status"] == "accepted" and data["accepted_by"] == ada.id
    assert_error(api.post(url(org, created["id"], "resend"), headers=headers["owner"]), 409, "CONFLICT")
    assert_error(api.delete(url(org, created["id"]), headers=headers["owner"]), 409, "CONFLICT")


def test_mail_limit_refuses_a_resend_and_keeps_the_old_link(make_app, smtp_sink, factories, auth_headers, org,
                                                            people):
    """Over RATELIMIT_MAIL_RECIPIENT a resend is a 429 and nothing changes: the link already mailed still works."""
    app = make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, ISSUER="http://localhost",
                   RATELIMIT_MAIL_RECIPIENT="1 per hour")
    api, owner = app.test_client(), auth_headers(people["owner"], app)
    created = assert_success(invite(api, org, owner), 201)["data"]
    link = path_of(link_in(smtp_sink.wait_for(1)[0], "/invitations?token="))
    assert_error(api.post(url(org, created["id"], "resend"), headers=owner), 429, "RATE_LIMITED")
    assert api.get(link).status_code == 200
    with app.app_context():
        assert db.session.get(Invitation, created["id"]).send_count == 1


def test_deleting_the_organization_deletes_its_invitations(api, mail_app, org, headers):
    """Invitations go with their organization (ON DELETE CASCADE)."""
    assert_success(invite(api, org, headers["owner"]), 201)
    assert_success(api.delete(f"/api/v1/organizations/{org.id}", headers=headers["owner"]))
    with mail_app.app_context():
        assert db.session.scalars(select(Invitation)).first() is None

