"""Authorize on an SSO session where the sign-in alone decides: on PostgreSQL the statement that
stores the code reads the sign-in. Only a live session of an active user may yield a code."""
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from idp.extensions import db
from idp.models import AuditEvent, AuthorizationCode, Session, SessionKind, User, utcnow
from idp.services.browser_sessions import PLAIN_COOKIE
from idp.services.sessions import create_session
from tests.oidc.conftest import REDIRECT_URI, query_of
from tests.oidc.grants.test_refresh_token import verified_claims


class Statements:
    """The SQL statements the app runs while counting, but for the client's lookup (the tests run
    with CLIENT_CACHE_SECONDS=0, so every request reads its client)."""

    def __init__(self, app):
        with app.app_context():
            self.engine = db.engine
        self.seen: list[str] = []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._note)
        return self.seen

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._note)

    def _note(self, conn, cursor, statement, parameters, context, executemany):
        if not statement.startswith("SELECT oauth_clients."):
            self.seen.append(statement)


def codes_and_authorizations(app) -> tuple[int, int]:
    with app.app_context():
        return (len(db.session.scalars(select(AuthorizationCode.id)).all()),
                len(db.session.scalars(select(AuditEvent.id).filter_by(action="oauth.authorized")).all()))


@pytest.mark.postgres
def test_code_on_an_sso_session_is_one_statement_bound_to_that_session(flow, user, app):
    """OIDC Core 3.1.2.5 / RFC 6749 4.1.2: the code is issued in one round trip that reads the sign-in,
    stores the code bound to its session, user, auth_time and amr, and audits the authorization; the
    code then redeems once (RFC 6749 4.1.3) with that sign-in's auth_time in its ID token."""
    session_id = flow.sign_in(user, amr=["pwd", "otp"])
    with Statements(app) as statements:
        response = flow.authorize()
    assert len(statements) == 1
    code = query_of(response.headers["Location"])["code"]
    with app.app_context():
        session = db.session.get(Session, session_id)
        row = db.session.scalars(select(AuthorizationCode)).one()
        assert (row.user_id, row.session_id, row.auth_time, row.amr) == (user.id, session_id, session.auth_time,
                                                                         ["pwd", "otp"])
        audited = db.session.scalars(select(AuditEvent).filter_by(action="oauth.authorized")).one()
        assert (audited.actor_user_id, audited.target_id, audited.details) == \
            (user.id, flow.rp.client_id, {"scope": "openid profile email"})
        auth_time = int(session.auth_time.timestamp())
    body = flow.exchange(code).get_json()
    claims = verified_claims(flow.client, body["id_token"])
    assert (claims["sub"], claims["auth_time"], claims["sid"]) == (user.subject, auth_time, session_id)
    assert flow.exchange(code).get_json()["error"] == "invalid_grant"


def _revoke(session: Session) -> None:
    session.status = "revoked"


def _expire(session: Session) -> None:
    session.expires_at = utcnow() - timedelta(seconds=1)


def _deactivate_user(session: Session) -> None:
    db.session.get(User, session.user_id).is_active = False


def _make_api_kind(session: Session) -> None:
    session.kind = SessionKind.API.value


@pytest.mark.parametrize("spoil", [_revoke, _expire, _deactivate_user, _make_api_kind],
                         ids=["revoked", "expired", "user deactivated", "API session"])
def test_a_cookie_of_no_live_browser_sign_in_gets_no_code(flow, user, app, spoil):
    """OIDC Core 3.1.2.3: a cookie whose session was revoked or has expired, whose user was
    deactivated, or that carries an API session's token authenticates nobody: the browser is sent
    to sign in, and no code and no authorization audit row are written."""
    session_id = flow.sign_in(user)
    with app.app_context():
        spoil(db.session.get(Session, session_id))
        db.session.commit()
    response = flow.authorize()
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?request=")
    assert codes_and_authorizations(app) == (0, 0)


def test_prompt_none_with_a_revoked_session_is_login_required(flow, user, app):
    """OIDC Core 3.1.2.6: prompt=none and no live sign-in (the session was revoked) answers
    login_required at the redirect URI, with no code written."""
    session_id = flow.sign_in(user)
    with app.app_context():
        _revoke(db.session.get(Session, session_id))
        db.session.commit()
    query = query_of(flow.authorize(prompt="none").headers["Location"])
    assert (query["error"], "code" in query) == ("login_required", False)
    assert codes_and_authorizations(app) == (0, 0)


@pytest.mark.postgres
def test_a_browser_without_a_live_sign_in_is_read_once(flow, user, app):
    """A revoked session's cookie costs the statement that finds no sign-in (and writes nothing)
    and the pending request the login page resumes: the sign-in is not read a second time."""
    session_id = flow.sign_in(user)
    with app.app_context():
        _revoke(db.session.get(Session, session_id))
        db.session.commit()
    with Statements(app) as statements:
        response = flow.authorize()
    assert response.headers["Location"].startswith("/login?request=")
    assert len(statements) == 2


def test_authorize_slides_the_idle_window_of_a_session_that_is_due(flow, user, app):
    """The SSO session stays alive while it is used (the seed README's idle window): an authorize
    on a session last seen more than the coarse step ago moves its expiry to now + idle."""
    session_id = flow.sign_in(user)
    with app.app_context():
        session = db.session.get(Session, session_id)
        session.expires_at = utcnow() + timedelta(seconds=60)
        db.session.commit()
    assert flow.authorize().status_code == 302
    with app.app_context():
        expires_at = db.session.get(Session, session_id).expires_at
    idle = app.config["SESSION_IDLE_TIMEOUT"]
    assert abs((expires_at - utcnow()).total_seconds() - idle) < 5


def test_a_session_of_another_browser_user_never_lends_its_code(flow, user, app, factories):
    """Each cookie yields a code for its own session's user only: two users' sessions side by side,
    each browser's code carries its own user and session."""
    other = factories.user()
    with app.app_context():
        other_session, other_token = create_session(db.session.get(User, other.id), kind=SessionKind.BROWSER)
        db.session.commit()
        other_session_id = other_session.id
    mine = flow.sign_in(user)
    flow.code()
    flow.client.set_cookie(PLAIN_COOKIE, other_token, domain="localhost")
    flow.code()
    with app.app_context():
        rows = {(row.user_id, row.session_id) for row in db.session.scalars(select(AuthorizationCode))}
    assert rows == {(user.id, mine), (other.id, other_session_id)}


def _consent(app, user_id: str, client_id: str, scopes: list[str]) -> None:
    from idp.models import OAuthClient
    from idp.services.consent import grant_consent

    with app.app_context():
        grant_consent(db.session.get(User, user_id), db.session.get(OAuthClient, client_id), scopes)
        db.session.commit()


@pytest.mark.postgres
def test_third_party_code_on_remembered_consent_is_one_statement(flow, user, app, factories):
    """OIDC Core 3.1.2.4: a third-party client the user already consented to gets its code without
    the consent page, in the one statement that reads the sign-in and the consent; it is audited."""
    flow.rp = factories.client(redirect_uris=[REDIRECT_URI])
    flow.sign_in(user)
    _consent(app, user.id, flow.rp.id, ["openid", "profile", "email"])
    with Statements(app) as statements:
        response = flow.authorize()
    assert len(statements) == 1
    assert query_of(response.headers["Location"])["code"]
    assert codes_and_authorizations(app) == (1, 1)


@pytest.mark.parametrize("consented_scopes, consenting", [([], None), (["openid", "profile"], "user"),
                                                          (["openid", "profile", "email"], "other user")],
                         ids=["no consent", "fewer scopes", "another user's consent"])
def test_third_party_code_needs_this_users_consent_to_every_scope(flow, user, app, factories,
                                                                  consented_scopes, consenting):
    """OIDC Core 3.1.2.4: without this user's consent to every requested scope (none at all, a consent
    to fewer scopes, or another user's consent to them all) the browser goes to the consent page and
    no code or authorization audit row is written."""
    flow.rp = factories.client(redirect_uris=[REDIRECT_URI])
    flow.sign_in(user)
    if consenting is not None:
        _consent(app, user.id if consenting == "user" else factories.user().id, flow.rp.id, consented_scopes)
    response = flow.authorize()
    assert response.status_code == 302 and response.headers["Location"].startswith("/consent/")
    assert codes_and_authorizations(app) == (0, 0)


def test_prompt_none_without_this_users_consent_is_consent_required(flow, user, app, factories):
    """OIDC Core 3.1.2.6: prompt=none where only another user consented answers consent_required at the
    redirect URI; no code is written."""
    flow.rp = factories.client(redirect_uris=[REDIRECT_URI])
    flow.sign_in(user)
    _consent(app, factories.user().id, flow.rp.id, ["openid", "profile", "email"])
    query = query_of(flow.authorize(prompt="none").headers["Location"])
    assert (query["error"], "code" in query) == ("consent_required", False)
    assert codes_and_authorizations(app) == (0, 0)
