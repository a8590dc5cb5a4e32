"""The invitation page (/invitations?token=...): join signed in, sign in or register first, refusals."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, Invitation, Membership, User, utcnow
from idp.security.secrets import hash_token, new_token
from tests.factories import DEFAULT_PASSWORD
from tests.web.helpers import csrf_from, sign_in, submit

NEW_PASSWORD = "Purple-Otter-Sings-7"
INVALID = "This invitation link is no longer valid."


def make_invitation(app, organization, email: str, role: str = "member", **fields) -> str:
    """An open invitation stored as the service stores one; returns the token its mail would carry."""
    token = new_token()
    fields.setdefault("expires_at", utcnow() + timedelta(days=7))
    with app.app_context():
        db.session.add(Invitation(organization_id=organization.id, email=email, role=role,
                                  token_hash=hash_token(token), **fields))
        db.session.commit()
    return token


def membership_of(app, organization, user) -> Membership | None:
    with app.app_context():
        return db.session.scalars(select(Membership).where(Membership.organization_id == organization.id,
                                                           Membership.user_id == user.id)).first()


def stored_invitation(app) -> Invitation:
    with app.app_context():
        return db.session.scalars(select(Invitation)).one()


@pytest.fixture
def acme(factories):
    return factories.organization(name="Acme Corp")


def test_signed_in_invitee_sees_the_organization_and_joins(app, client, factories, acme):
    """Signed in with the invited address: a Join form; posting it makes the membership and lands on the account."""
    ada = factories.user(email="ada@example.com")
    token = make_invitation(app, acme, "ada@example.com", role="admin")
    sign_in(client, ada.email)
    page = client.get(f"/invitations?token={token}").get_data(as_text=True)
    assert "Join Acme Corp" in page and "admin" in page and 'name="csrf_token"' in page
    response = submit(client, f"/invitations?token={token}", {})
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert membership_of(app, acme, ada).role == "admin"
    invitation = stored_invitation(app)
    assert invitation.accepted_at is not None and invitation.accepted_by == ada.id
    assert "You joined Acme Corp as admin." in client.get("/account").get_data(as_text=True)
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "organization.invitation_accepted")).one()
    assert (event.actor_user_id, event.target_id, event.organization_id) == (ada.id, invitation.id, acme.id)


def test_visitor_gets_sign_in_and_register_links_back_to_the_invitation(client, app, acme):
    """Not signed in: links to /login?next=<the invitation> and to registration for the invited address."""
    token = make_invitation(app, acme, "ada@example.com")
    page = client.get(f"/invitations?token={token}").get_data(as_text=True)
    assert f"/login?next=/invitations?token%3D{token}" in page
    assert f"/invitations/register?token={token}" in page and "ada@example.com" in page


def test_sign_in_then_accept(app, client, factories, acme):
    """Signing in from the invitation comes back to it; the Join form then makes the membership."""
    ada = factories.user(email="ada@example.com")
    token = make_invitation(app, acme, "ada@example.com")
    response = sign_in(client, ada.email, next_path=f"/invitations?token={token}")
    assert response.status_code == 302 and response.headers["Location"] == f"/invitations?token={token}"
    assert submit(client, f"/invitations?token={token}", {}).status_code == 302
    assert membership_of(app, acme, ada).role == "member"


def test_register_then_accept_makes_a_verified_member_signed_in(app, client, acme):
    """Registering from the invitation: the account has the invited address, verified by the link, and joins."""
    token = make_invitation(app, acme, "ada@example.com")
    form = client.get(f"/invitations/register?token={token}").get_data(as_text=True)
    assert 'value="ada@example.com"' in form and "readonly" in form
    response = submit(client, f"/invitations/register?token={token}",
                      {"name": "Ada Lovelace", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    with app.app_context():
        ada = db.session.scalars(select(User).where(User.email == "ada@example.com")).one()
        assert ada.email_verified is True and ada.name == "Ada Lovelace"
    assert membership_of(app, acme, ada).role == "member"
    assert client.get("/account").status_code == 200  # signed in


def test_register_with_an_existing_address_is_refused_and_changes_nothing(app, client, factories, acme):
    """An account already has the address: 409, sign in instead; the invitation stays open."""
    factories.user(email="ada@example.com")
    token = make_invitation(app, acme, "ada@example.com")
    response = submit(client, f"/invitations/register?token={token}",
                      {"name": "Someone", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 409 and "already exists" in response.get_data(as_text=True)
    assert stored_invitation(app).accepted_at is None
    with app.app_context():
        assert db.session.scalars(select(Membership)).first() is None


def test_register_form_errors_are_shown(app, client, acme):
    """A password the policy refuses is a 422 on the form; nothing is created."""
    token = make_invitation(app, acme, "ada@example.com")
    response = submit(client, f"/invitations/register?token={token}",
                      {"name": "Ada", "password": "short", "confirm": "short"})
    assert response.status_code == 422
    with app.app_context():
        assert db.session.scalars(select(User)).first() is None


def test_registration_switched_off_hides_the_register_link(make_app, factories, acme):
    """With REGISTRATION_ENABLED off, the page offers sign-in only and the register route answers 404."""
    app = make_app(REGISTRATION_ENABLED=False)
    token = make_invitation(app, acme, "ada@example.com")
    client = app.test_client()
    assert "/register" not in client.get(f"/invitations?token={token}").get_data(as_text=True)
    assert client.get(f"/invitations/register?token={token}").status_code == 404


def test_wrong_account_is_told_and_offered_to_sign_out(app, client, factories, acme):
    """Signed in with another address: the page explains, offers sign-out, and a forced POST is a 403."""
    bob = factories.user(email="bob@example.com")
    token = make_invitation(app, acme, "ada@example.com")
    sign_in(client, bob.email)
    page = client.get(f"/invitations?token={token}").get_data(as_text=True)
    assert "bob@example.com" in page and "ada@example.com" in page and 'action="/logout"' in page
    assert 'action="/invitations?' not in page
    token_value = csrf_from(page)
    response = client.post(f"/invitations?token={token}", data={"csrf_token": token_value})
    assert response.status_code == 403
    assert membership_of(app, acme, bob) is None and stored_invitation(app).accepted_at is None


def test_unverified_invitee_address_is_verified_by_accepting(app, client, factories, acme):
    """The link was mailed to the address, so accepting proves it like the verification link does."""
    ada = factories.user(email="ada@example.com", email_verified=False)
    token = make_invitation(app, acme, "ada@example.com")
    sign_in(client, ada.email)
    assert submit(client, f"/invitations?token={token}", {}).status_code == 302
    with app.app_context():
        assert db.session.get(User, ada.id).email_verified is True


def test_already_a_member_keeps_their_role(app, client, factories, acme):
    """Accepting while already a member uses the invitation up and leaves the membership as it was."""
    ada = factories.user(email="ada@example.com")
    factories.membership(acme, ada, "owner")
    token = make_invitation(app, acme, "ada@example.com")
    sign_in(client, ada.email)
    submit(client, f"/invitations?token={token}", {})
    assert membership_of(app, acme, ada).role == "owner"
    assert "already a member" in client.get("/account").get_data(as_text=True)


def test_link_works_once(app, client, factories, acme):
    """Single use: after joining, the same link is the invalid-link page (400), on GET and on POST."""
    ada = factories.user(email="ada@example.com")
    token = make_invitation(app, acme, "ada@example.com")
    sign_in(client, ada.email)
    page = client.get(f"/invitations?token={token}").get_data(as_text=True)
    assert submit(client, f"/invitations?token={token}", {}).status_code == 302
    again = client.get(f"/invitations?token={token}")
    assert again.status_code == 400 and INVALID in again.get_data(as_text=True)
    replay = client.post(f"/invitations?token={token}", data={"csrf_token": csrf_from(page)})
    assert replay.status_code == 400 and INVALID in replay.get_data(as_text=True)


@pytest.mark.parametrize("state", ["expired", "revoked", "accepted", "unknown"])
def test_every_dead_link_gets_the_same_page(app, client, factories, acme, state):
    """Expired, revoked, used and unknown tokens answer one 400 page, so a link tells nothing about the others."""
    fields = {"expired": {"expires_at": utcnow() - timedelta(seconds=1)}, "revoked": {"revoked_at": utcnow()},
              "accepted": {"accepted_at": utcnow()}, "unknown": {}}[state]
    token = make_invitation(app, acme, "ada@example.com", **fields)
    if state == "unknown":
        token = new_token()
    response = client.get(f"/invitations?token={token}")
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and INVALID in body and "Acme Corp" not in body
    assert client.get(f"/invitations/register?token={token}").status_code == 400


def test_link_expires_after_the_invitation_lifetime(make_app, factories, acme):
    """INVITATION_LIFETIME bounds a link: usable just before, refused just after."""
    import time_machine

    app = make_app(INVITATION_LIFETIME=3600)
    ada = factories.user(email="ada@example.com")
    inviter = factories.user(email="owner@example.com")
    with time_machine.travel("2026-06-01 10:00:00", tick=False) as clock:
        with app.test_request_context():
            from idp.models import Organization, Role
            from idp.services import invitations

            invitation = invitations.invite(db.session.get(Organization, acme.id), ada.email, Role.MEMBER,
                                            invitations.Inviter(inviter.id, None, True))
            assert invitation.expires_at == utcnow() + timedelta(seconds=3600)
            db.session.commit()
        with app.app_context():
            row = db.session.scalars(select(Invitation)).one()
            clock.shift(3599)
            assert row.status().value == "open"
            clock.shift(1)
            assert row.status().value == "expired"


def test_join_without_csrf_token_is_refused(app, client, factories, acme):
    """A forged cross-site POST (no CSRF token) is a 400 and joins nothing."""
    ada = factories.user(email="ada@example.com")
    token = make_invitation(app, acme, "ada@example.com")
    sign_in(client, ada.email)
    response = client.post(f"/invitations?token={token}", data={})
    assert response.status_code == 400
    assert membership_of(app, acme, ada) is None and stored_invitation(app).accepted_at is None


def test_join_while_signed_out_goes_to_sign_in(app, client, acme):
    """A POST without a session joins nothing and sends the browser to sign in, back to the invitation."""
    token = make_invitation(app, acme, "ada@example.com")
    form_token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post(f"/invitations?token={token}", data={"csrf_token": form_token})
    assert response.status_code == 302 and response.headers["Location"] == f"/login?next=/invitations?token%3D{token}"
    assert stored_invitation(app).accepted_at is None


def test_registration_password_is_the_users(app, client, acme):
    """The account made from the invitation signs in with the chosen password."""
    token = make_invitation(app, acme, "ada@example.com")
    submit(client, f"/invitations/register?token={token}", {"name": "Ada", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    fresh = app.test_client()
    assert sign_in(fresh, "ada@example.com", NEW_PASSWORD).status_code == 302
    assert sign_in(app.test_client(), "ada@example.com", DEFAULT_PASSWORD).status_code == 401


@pytest.mark.browser
def test_browser_signs_in_from_the_invitation_and_joins(page, live_server, app, factories, acme):
    """In Chromium: the link, Sign in to join, back on the invitation, Join, the account page says so."""
    from playwright.sync_api import expect

    ada = factories.user(email="ada@example.com")
    token = make_invitation(app, acme, ada.email, role="admin")
    page.goto(f"{live_server.url}/invitations?token={token}")
    page.get_by_role("link", name="Sign in to join").click()
    page.get_by_label("Email address").fill(ada.email)
    page.get_by_label("Password", exact=True).fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/invitations?token={token}")
    page.get_by_role("button", name="Join Acme Corp").click()
    page.wait_for_url("**/account")
    expect(page.get_by_text("You joined Acme Corp as admin.")).to_be_visible()
    assert membership_of(app, acme, ada).role == "admin"
