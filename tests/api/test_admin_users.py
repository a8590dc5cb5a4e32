"""/api/v1/admin/users: platform admins search, invite, change, disable and delete accounts, end their
sessions and see how they sign in; a disabled account signs in by no method and its tokens stop working."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from idp.extensions import db
from idp.models import (AccessToken, AuditEvent, FederatedIdentity, LogoutDelivery, RefreshToken, Role, Session,
                        SessionKind, SessionStatus, User)
from idp.services import federated_sign_in
from idp.services.sessions import create_session
from idp.services.upstream_identity import UpstreamIdentity
from idp.services.upstream_logins import FederatedSignInRefused
from tests.api.envelope_assertions import assert_error, assert_success
from tests.api.service_accounts import service_headers
from tests.factories import DEFAULT_PASSWORD
from tests.oidc.conftest import REDIRECT_URI, Flow, basic_auth
from tests.servers import LiveServer
from tests.web.helpers import link_in, sign_in, submit

USERS = "/api/v1/admin/users"
SCOPE = "manage:users"
NEW_PASSWORD = "Quiet-Harbour-Lights-9"


@pytest.fixture
def admin(factories):
    return factories.user(email="root@example.com", name="Root Admin", is_admin=True)


@pytest.fixture
def as_admin(auth_headers, admin):
    return auth_headers(admin)


@pytest.fixture
def carol(factories):
    return factories.user(email="carol@example.com", name="Carol Danvers")


@pytest.fixture
def rp(factories):
    return factories.client(redirect_uris=[REDIRECT_URI], first_party=True,
                            grant_types=["authorization_code", "refresh_token"],
                            scope="openid profile email offline_access")


@pytest.fixture
def mail_app(make_app, smtp_sink):
    """The app mailing through the real SMTP sink, its links rooted at http://localhost."""
    return make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, ISSUER="http://localhost")


def stored(app, user_id: str) -> User | None:
    with app.app_context():
        user = db.session.get(User, user_id)
        if user is not None:
            db.session.expunge(user)
        return user


def audit_rows(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        rows = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        for row in rows:
            db.session.expunge(row)
        return rows


def ids(response) -> list[str]:
    return [item["id"] for item in assert_success(response)["data"]]


# -- who may call it --------------------------------------------------------------------------------

def test_without_a_token_is_401_with_a_bearer_challenge(client):
    """RFC 6750 3.1: no credentials, a 401 envelope with the Bearer challenge."""
    response = client.get(USERS)
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.MEMBER, None])
def test_organization_roles_and_outsiders_are_403(client, factories, auth_headers, carol, role):
    """Only platform admins manage users: an organization's owner, admin or member, or nobody's, is refused."""
    caller = factories.user()
    if role is not None:
        factories.membership(factories.organization(), caller, role)
    headers = auth_headers(caller)
    assert_error(client.get(USERS, headers=headers), 403, "FORBIDDEN")
    assert_error(client.get(f"{USERS}/{carol.id}", headers=headers), 403, "FORBIDDEN")
    assert_error(client.patch(f"{USERS}/{carol.id}", json={"disabled": True}, headers=headers), 403, "FORBIDDEN")
    assert stored(client.application, carol.id).is_active


def test_platform_admin_session_is_allowed(client, as_admin, admin):
    """A platform admin's API session lists users."""
    assert admin.id in ids(client.get(USERS, headers=as_admin))


def test_platform_wide_service_account_with_the_scope_is_allowed(client, factories, carol):
    """A client_credentials token of a platform-wide client granted manage:users acts as a platform admin."""
    headers = service_headers(client, factories, SCOPE)
    assert carol.id in ids(client.get(USERS, headers=headers))


def test_service_account_without_the_scope_is_403(client, factories):
    """A service-account token without manage:users is refused (insufficient_scope)."""
    headers = service_headers(client, factories, "manage:organizations")
    assert_error(client.get(USERS, headers=headers), 403, "FORBIDDEN")


def test_organization_service_account_is_403(client, factories):
    """A service account owned by an organization is no platform admin, even with manage:users."""
    headers = service_headers(client, factories, SCOPE, organization_id=factories.organization().id)
    assert_error(client.get(USERS, headers=headers), 403, "FORBIDDEN")


def test_service_account_changes_are_audited_with_its_client_id(app, client, factories, carol):
    """A service account's change names it in the audit details (the row has no actor user)."""
    headers = service_headers(client, factories, SCOPE)
    assert_success(client.patch(f"{USERS}/{carol.id}", json={"name": "Carol D."}, headers=headers))
    [row] = audit_rows(app, "admin.user.updated")
    assert row.actor_user_id is None and row.details["actor_client_id"].startswith("client-")


# -- list, search, filters, pagination ----------------------------------------------------------

def test_search_matches_email_or_name_case_insensitively(client, factories, as_admin):
    """q finds a part of the address or of the name, whatever the case; LIKE wildcards are literal."""
    by_mail = factories.user(email="zebra.keeper@example.com", name="Someone")
    by_name = factories.user(email="x1@example.com", name="Ada ZEBRA Lovelace")
    factories.user(email="other@example.com", name="Other 100%")
    assert sorted(ids(client.get(f"{USERS}?q=Zebra", headers=as_admin))) == sorted([by_mail.id, by_name.id])
    assert ids(client.get(f"{USERS}?q=%25", headers=as_admin)) != []
    assert ids(client.get(f"{USERS}?q=_", headers=as_admin)) == []


def test_filters_by_status_organization_upstream_and_creation(app, client, factories, as_admin, admin):
    """status, organization_id, upstream (slug of a linked identity) and created_since each narrow the list."""
    old = factories.user(created_at=datetime(2020, 1, 1, tzinfo=timezone.utc))
    disabled = factories.user(is_active=False)
    member = factories.user()
    org = factories.organization()
    factories.membership(org, member, Role.MEMBER)
    upstream = factories.upstream(slug="acme-sso")
    federated = factories.user()
    with app.app_context():
        db.session.add(FederatedIdentity(upstream_id=upstream.id, user_id=federated.id, subject="s-1"))
        db.session.commit()
    assert ids(client.get(f"{USERS}?status=disabled", headers=as_admin)) == [disabled.id]
    assert disabled.id not in ids(client.get(f"{USERS}?status=active", headers=as_admin))
    assert ids(client.get(f"{USERS}?organization_id={org.id}", headers=as_admin)) == [member.id]
    assert ids(client.get(f"{USERS}?upstream=acme-sso", headers=as_admin)) == [federated.id]
    recent = ids(client.get(f"{USERS}?created_since=2021-01-01T00:00:00Z", headers=as_admin))
    assert old.id not in recent and admin.id in recent


def test_pagination_returns_every_user_once_newest_first(client, factories, as_admin, admin):
    """limit and cursor walk the list newest first, each user once; next_cursor is null on the last page."""
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    made = [factories.user(created_at=base + timedelta(minutes=n)).id for n in range(5)]
    seen, cursor = [], None
    while True:
        body = assert_success(client.get(USERS, query_string={"limit": 2, **({"cursor": cursor} if cursor else {})},
                                         headers=as_admin))
        seen += [item["id"] for item in body["data"]]
        cursor = body["meta"]["pagination"]["next_cursor"]
        assert body["meta"]["pagination"]["limit"] == 2
        if cursor is None:
            break
    assert seen == [admin.id, *reversed(made)]


@pytest.mark.parametrize("query, field", [("frobnicate=1", "frobnicate"), ("status=gone", "status"),
                                          ("limit=0", "limit"), ("limit=201", "limit"), ("cursor=forged", "cursor"),
                                          ("created_since=yesterday", "created_since")])
def test_bad_query_parameters_are_422_naming_them(client, as_admin, query, field):
    """An unknown or malformed parameter, or a forged cursor, is a 422 naming it."""
    body = assert_error(client.get(f"{USERS}?{query}", headers=as_admin), 422, "VALIDATION_ERROR")
    assert field in body["error"]["details"]


# -- get, patch, delete ---------------------------------------------------------------------------

def test_get_returns_the_user_with_an_etag_and_no_secrets(client, as_admin, carol):
    """GET answers the account (no password hash) and a strong ETag."""
    response = client.get(f"{USERS}/{carol.id}", headers=as_admin)
    data = assert_success(response)["data"]
    assert (data["email"], data["disabled"], data["is_admin"], data["has_password"]) == \
        ("carol@example.com", False, False, True)
    assert "password_hash" not in data and response.headers["ETag"].startswith('"')


def test_unknown_user_is_404(client, as_admin):
    """Every item operation on a missing user is 404."""
    missing = f"{USERS}/00000000-0000-0000-0000-000000000000"
    assert_error(client.get(missing, headers=as_admin), 404, "NOT_FOUND")
    assert_error(client.patch(missing, json={"name": "X"}, headers=as_admin), 404, "NOT_FOUND")
    assert_error(client.delete(missing, headers=as_admin), 404, "NOT_FOUND")
    assert_error(client.post(f"{missing}/sessions/revoke", headers=as_admin), 404, "NOT_FOUND")
    assert_error(client.get(f"{missing}/sessions", headers=as_admin), 404, "NOT_FOUND")
    assert_error(client.get(f"{missing}/identities", headers=as_admin), 404, "NOT_FOUND")
    assert_error(client.post(f"{missing}/password-reset", headers=as_admin), 404, "NOT_FOUND")


def test_patch_changes_fields_and_audits_their_names(app, client, as_admin, admin, carol):
    """name, email_verified and is_admin change; the audit row names the changed fields only."""
    response = client.patch(f"{USERS}/{carol.id}", json={"name": "Captain Marvel", "email_verified": True,
                                                          "is_admin": True}, headers=as_admin)
    data = assert_success(response)["data"]
    assert (data["name"], data["is_admin"]) == ("Captain Marvel", True)
    [row] = audit_rows(app, "admin.user.updated")
    assert (row.actor_user_id, row.target_id, row.details["changed"]) == (admin.id, carol.id, ["name", "is_admin"])
    assert response.headers["ETag"] != client.get(f"{USERS}/{admin.id}", headers=as_admin).headers["ETag"]


def test_patch_with_a_stale_if_match_is_412_and_changes_nothing(app, client, as_admin, carol):
    """RFC 9110 13.1.1: If-Match with an ETag that is no longer current is 412; the current one works."""
    etag = client.get(f"{USERS}/{carol.id}", headers=as_admin).headers["ETag"]
    first = client.patch(f"{USERS}/{carol.id}", json={"name": "First"}, headers={**as_admin, "If-Match": etag})
    assert_success(first)
    second = client.patch(f"{USERS}/{carol.id}", json={"name": "Second"}, headers={**as_admin, "If-Match": etag})
    assert_error(second, 412, "PRECONDITION_FAILED")
    assert stored(app, carol.id).name == "First"
    again = client.patch(f"{USERS}/{carol.id}", json={"name": "Second"},
                         headers={**as_admin, "If-Match": first.headers["ETag"]})
    assert assert_success(again)["data"]["name"] == "Second"


@pytest.mark.parametrize("body, field", [({"password": "Secret-Pass-123"}, "password"), ({"email": "x@y.z"}, "email"),
                                         ({"disabled": "maybe"}, "disabled"), ({"name": ""}, "name")])
def test_patch_refuses_unknown_or_invalid_fields(app, client, as_admin, carol, body, field):
    """Fields outside name/disabled/email_verified/is_admin, or malformed values, are a 422 naming them."""
    response = client.patch(f"{USERS}/{carol.id}", json=body, headers=as_admin)
    assert field in assert_error(response, 422, "VALIDATION_ERROR")["error"]["details"]
    assert stored(app, carol.id).email == "carol@example.com"


def test_patch_with_nothing_to_change_is_422(client, as_admin, carol):
    """An empty PATCH body is refused."""
    assert_error(client.patch(f"{USERS}/{carol.id}", json={}, headers=as_admin), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("body, field", [({"disabled": True}, "disabled"), ({"is_admin": False}, "is_admin")])
def test_admin_cannot_disable_or_demote_themselves(app, client, as_admin, admin, body, field):
    """Pinned: your own account is never disabled or demoted here (409 naming the field)."""
    response = client.patch(f"{USERS}/{admin.id}", json=body, headers=as_admin)
    assert field in assert_error(response, 409, "CONFLICT")["error"]["details"]
    assert stored(app, admin.id).is_admin and stored(app, admin.id).is_active


def test_the_last_active_platform_admin_cannot_be_demoted_disabled_or_deleted(app, client, factories, admin):
    """A service account cannot leave the platform without an active admin; with two, one may go."""
    headers = service_headers(client, factories, SCOPE)
    assert_error(client.patch(f"{USERS}/{admin.id}", json={"is_admin": False}, headers=headers), 409, "CONFLICT")
    assert_error(client.patch(f"{USERS}/{admin.id}", json={"disabled": True}, headers=headers), 409, "CONFLICT")
    assert_error(client.delete(f"{USERS}/{admin.id}", headers=headers), 409, "CONFLICT")
    factories.user(is_admin=True)
    assert_success(client.patch(f"{USERS}/{admin.id}", json={"is_admin": False}, headers=headers))


def test_delete_removes_the_user_ends_sessions_and_audits(app, client, factories, as_admin, admin, carol):
    """DELETE deletes the account as its owner would: sessions gone, an organization only they were in too."""
    org = factories.organization()
    factories.membership(org, carol, Role.OWNER)
    with app.app_context():
        create_session(db.session.get(User, carol.id))
        db.session.commit()
    body = assert_success(client.delete(f"{USERS}/{carol.id}", headers=as_admin))
    assert body["data"]["organizations_deleted"] == [org.id]
    assert stored(app, carol.id) is None
    with app.app_context():
        assert db.session.scalars(select(Session).where(Session.user_id == carol.id)).first() is None
    [row] = audit_rows(app, "admin.user.deleted")
    assert (row.actor_user_id, row.target_id) == (admin.id, carol.id)


def test_delete_with_a_stale_if_match_is_412(app, client, as_admin, carol):
    """DELETE honours If-Match: a stale ETag keeps the user."""
    etag = client.get(f"{USERS}/{carol.id}", headers=as_admin).headers["ETag"]
    assert_success(client.patch(f"{USERS}/{carol.id}", json={"name": "Renamed"}, headers=as_admin))
    assert_error(client.delete(f"{USERS}/{carol.id}", headers={**as_admin, "If-Match": etag}), 412,
                 "PRECONDITION_FAILED")
    assert stored(app, carol.id) is not None


def test_delete_refusals(client, factories, as_admin, admin, carol):
    """Deleting yourself, or the last owner of an organization with other members, is 409."""
    assert_error(client.delete(f"{USERS}/{admin.id}", headers=as_admin), 409, "CONFLICT")
    org = factories.organization(name="Busy Org")
    factories.membership(org, carol, Role.OWNER)
    factories.membership(org, factories.user(), Role.MEMBER)
    body = assert_error(client.delete(f"{USERS}/{carol.id}", headers=as_admin), 409, "CONFLICT")
    assert body["error"]["details"]["organizations"][0]["id"] == org.id


# -- create: the invitation -----------------------------------------------------------------------

def test_create_mails_an_invitation_whose_link_sets_the_password(mail_app, smtp_sink, auth_headers, admin):
    """POST creates a password-less, unverified account and mails a set-password link; using it sets the
    password, verifies the address, and the invitee signs in."""
    api = mail_app.test_client()
    response = api.post(USERS, json={"email": " Dana@Example.com ", "name": "Dana Scully"},
                        headers=auth_headers(admin, mail_app))
    response.close()  # as a WSGI server does after the body: the mail goes out
    data = assert_success(response, 201)["data"]
    assert (data["email"], data["has_password"], data["email_verified"]) == ("dana@example.com", False, False)
    [mail] = smtp_sink.wait_for(1)
    assert mail["To"] == "dana@example.com"
    link = urlsplit(link_in(mail, "/set-password"))
    browser = mail_app.test_client()
    page = f"{link.path}?{link.query}"
    token = link.query.split("token=")[1]
    done = submit(browser, page, {"token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
                  action="/set-password")
    assert done.status_code == 302 and done.headers["Location"] == "/login"
    user = stored(mail_app, data["id"])
    assert user.email_verified and user.password_hash
    assert sign_in(browser, "dana@example.com", NEW_PASSWORD).status_code == 302
    assert browser.get(page).status_code == 400  # the link works once
    [row] = audit_rows(mail_app, "admin.user.created")
    assert (row.actor_user_id, row.target_id) == (admin.id, data["id"])


def test_invitation_link_is_not_a_reset_link(mail_app, smtp_sink, auth_headers, admin):
    """The set-password token has its own purpose: /reset-password refuses it."""
    response = mail_app.test_client().post(USERS, json={"email": "eve@example.com", "name": "Eve"},
                                           headers=auth_headers(admin, mail_app))
    response.close()
    link = urlsplit(link_in(smtp_sink.wait_for(1)[0], "/set-password"))
    assert mail_app.test_client().get(f"/reset-password?{link.query}").status_code == 400


def test_create_refuses_a_password_field_and_unknown_fields(client, as_admin):
    """No password in the request: it is an unknown field (422 naming it), as is any other."""
    response = client.post(USERS, json={"email": "f@example.com", "name": "F", "password": "Secret-Pass-123",
                                        "is_admin": True}, headers=as_admin)
    details = assert_error(response, 422, "VALIDATION_ERROR")["error"]["details"]
    assert {"password", "is_admin"} <= set(details)


@pytest.mark.parametrize("body, field", [({"name": "No Mail"}, "email"), ({"email": "g@example.com"}, "name"),
                                         ({"email": "not-an-address", "name": "G"}, "email")])
def test_create_needs_a_valid_email_and_a_name(client, as_admin, body, field):
    """email and name are required; an invalid address is refused on `email`."""
    response = client.post(USERS, json=body, headers=as_admin)
    assert field in assert_error(response, 422, "VALIDATION_ERROR")["error"]["details"]


def test_create_with_a_used_address_is_409(client, as_admin, carol):
    """An address an account already has (any case) is a 409 with a generic message."""
    response = client.post(USERS, json={"email": "CAROL@example.com", "name": "Other"}, headers=as_admin)
    assert "carol" not in assert_error(response, 409, "CONFLICT")["message"].lower()


# -- sessions, password reset, identities ---------------------------------------------------------

def test_sessions_revoke_ends_every_session_and_token(app, client, as_admin, admin, carol, rp):
    """sessions/revoke ends the browser and API sessions and revokes access and refresh tokens, offline
    ones whose session already ended included."""
    flow = Flow(app, app.test_client(), rp)
    flow.sign_in(carol)
    tokens = flow.tokens(scope="openid offline_access")
    api_headers = {"Authorization": f"Bearer {_api_token(app, carol)}"}
    body = assert_success(client.post(f"{USERS}/{carol.id}/sessions/revoke", headers=as_admin))
    assert body["data"]["sessions_ended"] == 2 and body["data"]["tokens_revoked"] >= 2
    assert_error(client.get("/api/v1/users/me", headers=api_headers), 401, "UNAUTHORIZED")
    assert flow.client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
                           ).status_code == 401
    assert flow.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_grant"
    with app.app_context():
        assert {s.status for s in db.session.scalars(select(Session).where(Session.user_id == carol.id))} == \
            {SessionStatus.REVOKED.value}
        assert all(t.revoked_at for t in db.session.scalars(select(RefreshToken)))
    [row] = audit_rows(app, "admin.user.sessions_revoked")
    assert (row.actor_user_id, row.target_id, row.details["sessions_ended"]) == (admin.id, carol.id, 2)


@pytest.mark.parametrize("call", ["revoke", "disable"])
def test_ending_sessions_queues_back_channel_logout(app, client, factories, as_admin, carol, call):
    """OpenID Connect Back-Channel Logout 1.0 2.5: sessions/revoke and disabling tell each relying party
    of the ended sessions that registered a backchannel_logout_uri (one queued logout token each)."""
    rp = factories.client(redirect_uris=[REDIRECT_URI], first_party=True,
                          backchannel_logout_uri="https://rp.example/backchannel")
    flow = Flow(app, app.test_client(), rp)
    session_id = flow.sign_in(carol)
    flow.tokens()
    if call == "revoke":
        assert_success(client.post(f"{USERS}/{carol.id}/sessions/revoke", headers=as_admin))
    else:
        assert_success(client.patch(f"{USERS}/{carol.id}", json={"disabled": True}, headers=as_admin))
    with app.app_context():
        queued = [(d.oauth_client_id, d.session_id) for d in db.session.scalars(select(LogoutDelivery))]
    assert queued == [(rp.id, session_id)]


def _api_token(app, user) -> str:
    with app.app_context():
        _, token = create_session(db.session.get(User, user.id), kind=SessionKind.API, ip_address="203.0.113.7",
                                  user_agent="curl/8")
        db.session.commit()
    return token


def test_sessions_lists_live_sessions_with_their_relying_parties(app, client, as_admin, carol, rp):
    """GET sessions: each live session's kind, address, user agent and the clients that got tokens under it."""
    flow = Flow(app, app.test_client(), rp)
    browser_id = flow.sign_in(carol)
    flow.tokens()
    _api_token(app, carol)
    body = assert_success(client.get(f"{USERS}/{carol.id}/sessions", headers=as_admin))
    by_kind = {item["kind"]: item for item in body["data"]}
    assert set(by_kind) == {"browser", "api"} and by_kind["browser"]["id"] == browser_id
    assert by_kind["browser"]["clients"] == [{"client_id": rp.client_id, "name": rp.name}]
    assert (by_kind["api"]["ip_address"], by_kind["api"]["user_agent"], by_kind["api"]["clients"]) == \
        ("203.0.113.7", "curl/8", [])
    assert body["meta"]["pagination"]["next_cursor"] is None


def test_identities_lists_password_and_linked_upstreams(app, client, factories, as_admin, carol):
    """GET identities: whether a password is set, and each upstream identity with slug, subject and link time."""
    upstream = factories.upstream(slug="corp-okta")
    with app.app_context():
        db.session.add(FederatedIdentity(upstream_id=upstream.id, user_id=carol.id, subject="00u-carol",
                                         email="carol@corp.example"))
        db.session.commit()
    data = assert_success(client.get(f"{USERS}/{carol.id}/identities", headers=as_admin))["data"]
    assert data["password"] is True
    [identity] = data["identities"]
    assert (identity["upstream_slug"], identity["subject"], identity["upstream_kind"]) == \
        ("corp-okta", "00u-carol", "oidc")
    assert identity["linked_at"]


def test_password_reset_mails_the_reset_link(mail_app, smtp_sink, auth_headers, admin, factories):
    """password-reset mails the usual /reset-password link (202), audited; a disabled account is 409."""
    user = factories.user(email="hal@example.com")
    api = mail_app.test_client()
    headers = auth_headers(admin, mail_app)
    response = api.post(f"{USERS}/{user.id}/password-reset", headers=headers)
    response.close()
    assert_success(response, 202)
    [mail] = smtp_sink.wait_for(1)
    assert mail["To"] == "hal@example.com" and link_in(mail, "/reset-password")
    assert [row.target_id for row in audit_rows(mail_app, "admin.user.password_reset_sent")] == [user.id]
    disabled = factories.user(is_active=False)
    assert_error(api.post(f"{USERS}/{disabled.id}/password-reset", headers=headers), 409, "CONFLICT")


# -- what disabled means ----------------------------------------------------------------------------

@pytest.fixture
def disabled_carol(app, client, as_admin, carol, rp):
    """Carol with a browser session, an API session and tokens, then disabled through the API."""
    flow = Flow(app, app.test_client(), rp)
    flow.sign_in(carol)
    tokens = flow.tokens(scope="openid offline_access")
    api_token = _api_token(app, carol)
    body = assert_success(client.patch(f"{USERS}/{carol.id}", json={"disabled": True}, headers=as_admin))
    assert body["data"]["disabled"] is True
    return flow, tokens, api_token


def test_disabling_ends_sessions_revokes_tokens_and_is_audited(app, disabled_carol, carol, admin):
    """Disabling revokes every session and token at once, and the audit row says what changed."""
    with app.app_context():
        assert {s.status for s in db.session.scalars(select(Session).where(Session.user_id == carol.id))} == \
            {SessionStatus.REVOKED.value}
        assert all(t.revoked_at for t in db.session.scalars(select(AccessToken)))
        assert all(t.revoked_at for t in db.session.scalars(select(RefreshToken)))
    [row] = audit_rows(app, "admin.user.updated")
    assert row.details["changed"] == ["disabled"] and row.details["sessions_ended"] == 2


def test_disabled_user_cannot_sign_in_with_a_password(app, disabled_carol, carol):
    """The sign-in page and the API login refuse the right password of a disabled account."""
    assert sign_in(app.test_client(), carol.email).status_code == 401
    response = app.test_client().post("/api/v1/auth/login", json={"email": carol.email, "password": DEFAULT_PASSWORD})
    assert_error(response, 401, "INVALID_CREDENTIALS")


def test_disabled_user_tokens_stop_working(app, disabled_carol, rp):
    """Userinfo answers 401, introspection reads inactive, the refresh token is invalid_grant, the API
    session is 401 (RFC 6750 3.1, RFC 7662 2.2)."""
    flow, tokens, api_token = disabled_carol
    userinfo = flow.client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401 and "invalid_token" in userinfo.headers["WWW-Authenticate"]
    introspection = flow.client.post("/oauth2/introspect", data={"token": tokens["access_token"]},
                                     headers=basic_auth(rp.client_id))
    assert introspection.get_json() == {"active": False}
    assert flow.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert_error(flow.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {api_token}"}), 401,
                 "UNAUTHORIZED")


def test_a_disabled_users_token_missed_by_revocation_still_reads_inactive(app, client, as_admin, carol, rp):
    """A token (and its session) whose revocation was undone still reads inactive while its user is disabled."""
    flow = Flow(app, app.test_client(), rp)
    flow.sign_in(carol)
    tokens = flow.tokens()
    assert_success(client.patch(f"{USERS}/{carol.id}", json={"disabled": True}, headers=as_admin))
    with app.app_context():
        for row in db.session.scalars(select(AccessToken)):
            row.revoked_at = None
        for session in db.session.scalars(select(Session).where(Session.user_id == carol.id)):
            session.status, session.revoked_at = SessionStatus.ACTIVE.value, None
        db.session.commit()
    introspection = flow.client.post("/oauth2/introspect", data={"token": tokens["access_token"]},
                                     headers=basic_auth(rp.client_id))
    assert introspection.get_json() == {"active": False}


def test_disabled_user_existing_sso_session_is_refused(app, client, as_admin, carol, rp):
    """A browser session opened before the account was disabled no longer answers an authorization request."""
    flow = Flow(app, app.test_client(), rp)
    flow.sign_in(carol)
    assert flow.authorize().status_code == 302
    assert_success(client.patch(f"{USERS}/{carol.id}", json={"disabled": True}, headers=as_admin))
    response = flow.authorize()
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?")


def test_disabled_user_cannot_sign_in_through_an_upstream(app, client, factories, as_admin, carol):
    """A federated sign-in with the disabled user's linked identity is refused (user_disabled)."""
    upstream = factories.upstream(slug="corp-sso")
    with app.app_context():
        db.session.add(FederatedIdentity(upstream_id=upstream.id, user_id=carol.id, subject="carol-at-corp"))
        db.session.commit()
    assert_success(client.patch(f"{USERS}/{carol.id}", json={"disabled": True}, headers=as_admin))
    with app.test_request_context("/"):
        stored_upstream = db.session.get(type(upstream), upstream.id)
        identity = UpstreamIdentity(upstream_id=upstream.id, subject="carol-at-corp", email=carol.email,
                                    email_verified=True)
        with pytest.raises(FederatedSignInRefused) as refused:
            federated_sign_in.sign_in_identity(stored_upstream, identity, browser_hash="b" * 64)
        db.session.rollback()
    assert refused.value.reason == "user_disabled"


def test_disabled_user_reset_link_stops_working(mail_app, smtp_sink, factories, auth_headers, admin):
    """A reset link mailed before the account was disabled is refused once it is."""
    user = factories.user(email="ivy@example.com")
    api = mail_app.test_client()
    headers = auth_headers(admin, mail_app)
    api.post(f"{USERS}/{user.id}/password-reset", headers=headers).close()
    link = urlsplit(link_in(smtp_sink.wait_for(1)[0], "/reset-password"))
    assert_success(api.patch(f"{USERS}/{user.id}", json={"disabled": True}, headers=headers))
    assert mail_app.test_client().get(f"{link.path}?{link.query}").status_code == 400


def test_enabling_again_lets_the_user_sign_in(app, client, as_admin, disabled_carol, carol):
    """disabled: false restores sign-in (the ended sessions stay ended)."""
    assert_success(client.patch(f"{USERS}/{carol.id}", json={"disabled": False}, headers=as_admin))
    assert sign_in(app.test_client(), carol.email).status_code == 302


# -- concurrency on PostgreSQL ----------------------------------------------------------------------

@pytest.fixture
def live(make_app):
    server = LiveServer(make_app())
    server.start()
    yield server
    server.stop()


@pytest.mark.postgres
def test_concurrent_patches_with_one_etag_give_one_200_and_412s(live, auth_headers, admin, carol):
    """RFC 9110 13.1.1: of eight PATCHes sent at once with the same If-Match, one wins and seven get 412."""
    headers = auth_headers(admin, live.app)
    etag = requests.get(f"{live.url}{USERS}/{carol.id}", headers=headers, timeout=30).headers["ETag"]

    def patch(n: int) -> int:
        return requests.patch(f"{live.url}{USERS}/{carol.id}", json={"name": f"Name {n}"},
                              headers={**headers, "If-Match": etag}, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(patch, range(8)))
    assert codes == [200] + [412] * 7


@pytest.mark.postgres
def test_two_admins_demoting_each_other_at_once_leave_one_admin(live, factories, auth_headers, admin):
    """The only two admins demote each other at the same moment: one succeeds, the other is refused."""
    other = factories.user(is_admin=True)
    calls = [(other.id, auth_headers(admin, live.app)), (admin.id, auth_headers(other, live.app))]

    def demote(call) -> int:
        target, headers = call
        return requests.patch(f"{live.url}{USERS}/{target}", json={"is_admin": False}, headers=headers,
                              timeout=30).status_code

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(demote, calls))
    assert codes[0] == 200 and codes[1] in (403, 409)  # refused as no longer an admin, or as the last one
    with live.app.app_context():
        assert len(list(db.session.scalars(select(User).where(User.is_admin.is_(True))))) == 1
