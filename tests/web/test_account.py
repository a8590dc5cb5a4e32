"""The account pages: profile, password change, sessions and connected apps."""
from __future__ import annotations

from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, Session, SessionStatus, User
from idp.services import consent, sessions
from tests.factories import DEFAULT_PASSWORD
from tests.web.helpers import sign_in, submit

NEW_PASSWORD = "Silver-Kettle-Morning-3"


def _user(app, user_id: str) -> User:
    with app.app_context():
        return db.session.get(User, user_id)


def test_profile_edit_saves_the_fields(client, factories, app):
    """The profile form saves name, given/family name, locale and time zone."""
    user = factories.user()
    sign_in(client, user.email)
    response = submit(client, "/account", {"name": "Grace Hopper", "given_name": "Grace", "family_name": "Hopper",
                                           "locale": "en-GB", "zoneinfo": "Europe/London"})
    assert response.status_code == 302
    saved = _user(app, user.id)
    assert (saved.name, saved.given_name, saved.family_name) == ("Grace Hopper", "Grace", "Hopper")
    assert (saved.locale, saved.zoneinfo) == ("en-GB", "Europe/London")
    assert "Your profile was saved." in client.get("/account").get_data(as_text=True)


def test_profile_refuses_bad_values_and_writes_nothing(client, factories, app):
    """An empty name or a malformed locale answers 422 with field errors; nothing is saved."""
    user = factories.user(name="Original")
    sign_in(client, user.email)
    response = submit(client, "/account", {"name": "", "locale": "<script>"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="name-error"' in html and 'id="locale-error"' in html
    assert _user(app, user.id).name == "Original"


def test_privileged_fields_cannot_be_posted(client, factories, app):
    """Extra fields such as is_admin or email in the form are ignored."""
    user = factories.user()
    sign_in(client, user.email)
    submit(client, "/account", {"name": "Eve", "is_admin": "true", "email": "eve@evil.example"})
    saved = _user(app, user.id)
    assert saved.is_admin is False and saved.email == user.email


def test_change_password_needs_the_current_one(client, factories):
    """A wrong current password is refused on that field."""
    user = factories.user()
    sign_in(client, user.email)
    response = submit(client, "/account/password", {"current_password": "wrong-one-here", "password": NEW_PASSWORD,
                                                    "confirm": NEW_PASSWORD})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="current_password-error"' in html


def test_change_password_ends_other_sessions_only(client, factories, app):
    """Changing the password keeps this browser signed in and signs out every other session."""
    user = factories.user()
    other = app.test_client()
    sign_in(other, user.email)
    sign_in(client, user.email)
    response = submit(client, "/account/password", {"current_password": DEFAULT_PASSWORD, "password": NEW_PASSWORD,
                                                    "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert client.get("/account").status_code == 200
    assert other.get("/account").status_code == 302
    with app.app_context():
        assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "password.change")).one()


def test_new_password_must_meet_the_policy(client, factories):
    """A too-common new password is refused on the new-password field."""
    user = factories.user()
    sign_in(client, user.email)
    response = submit(client, "/account/password", {"current_password": DEFAULT_PASSWORD, "password": "password",
                                                    "confirm": "password"})
    assert response.status_code == 422 and 'id="password-error"' in response.get_data(as_text=True)


def test_sessions_page_lists_and_revokes_another_session(client, factories, app):
    """The sessions page lists active sessions, marks this one, and revokes another."""
    user = factories.user()
    other = app.test_client()
    sign_in(other, user.email)
    sign_in(client, user.email)
    html = client.get("/account/sessions").get_data(as_text=True)
    assert html.count('class="item"') == 2 and "current" in html
    with app.app_context():
        other_id = next(s.id for s in sessions.list_active(db.session.get(User, user.id))
                        if s.token_hash != _token_hash(client))
    response = submit(client, "/account/sessions", {}, action=f"/account/sessions/{other_id}/revoke")
    assert response.status_code == 302
    assert other.get("/account").status_code == 302 and client.get("/account").status_code == 200


def _token_hash(client) -> str:
    from idp.security.secrets import hash_token

    return hash_token(client.get_cookie("authy2_session").value)


def test_revoking_the_current_session_signs_out(client, factories, app):
    """Revoking this browser's own session signs it out."""
    user = factories.user()
    sign_in(client, user.email)
    with app.app_context():
        current = db.session.scalars(select(Session)).one().id
    response = submit(client, "/account/sessions", {}, action=f"/account/sessions/{current}/revoke")
    assert response.headers["Location"] == "/login"
    assert client.get("/account").status_code == 302


def test_someone_elses_session_cannot_be_revoked(client, factories, app):
    """Another user's session id answers 404 and stays active."""
    victim, attacker = factories.user(), factories.user()
    victim_client = app.test_client()
    sign_in(victim_client, victim.email)
    sign_in(client, attacker.email)
    with app.app_context():
        victim_session = db.session.scalars(select(Session).where(Session.user_id == victim.id)).one().id
    response = submit(client, "/account/sessions", {}, action=f"/account/sessions/{victim_session}/revoke")
    assert response.status_code == 404
    with app.app_context():
        assert db.session.get(Session, victim_session).status == SessionStatus.ACTIVE.value


def test_apps_page_lists_consents_and_revokes_one(client, factories, app):
    """Connected apps are listed with their scopes; removing one forgets the consent."""
    user = factories.user()
    rp = factories.client(name="Acme Portal", client_id="acme-portal-001")
    with app.app_context():
        consent.grant_consent(db.session.get(User, user.id), rp, ["openid", "email"])
        db.session.commit()
    sign_in(client, user.email)
    html = client.get("/account/apps").get_data(as_text=True)
    assert "Acme Portal" in html and "Your email address and whether it is verified" in html
    response = submit(client, "/account/apps", {}, action="/account/apps/acme-portal-001/revoke")
    assert response.status_code == 302
    with app.app_context():
        assert consent.list_consents(db.session.get(User, user.id)) == []
    assert "No app has access" in client.get("/account/apps").get_data(as_text=True)


def test_revoking_an_app_without_consent_is_404(client, factories):
    """Removing access for an app the user never allowed answers 404."""
    user = factories.user()
    factories.client(client_id="other-app")
    sign_in(client, user.email)
    assert submit(client, "/account/password", {}, action="/account/apps/other-app/revoke").status_code == 404


def test_markup_in_names_and_user_agents_is_shown_as_text(client, factories):
    """A name and a session's User-Agent holding <script> render escaped on the account pages."""
    user = factories.user(name='<script>alert("n")</script>')
    sign_in(client, user.email)
    api = client.application.test_client()
    api.post("/api/v1/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD},
             headers={"User-Agent": "<img src=x onerror=alert(1)>"})
    profile = client.get("/account").get_data(as_text=True)
    sessions_page = client.get("/account/sessions").get_data(as_text=True)
    assert "<script>alert" not in profile and "&lt;script&gt;" in profile
    assert "<img src=x" not in sessions_page and "&lt;img src=x onerror=alert(1)&gt;" in sessions_page
