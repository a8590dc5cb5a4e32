"""Ending sessions on purpose (idp.services.session_end): one function, its relying parties, its signal."""
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from idp.extensions import db
from idp.models import AccessToken, OAuthClient, RefreshToken, Session, SessionKind, User
from idp.services import session_end, sessions
from idp.services import tokens as token_records
from idp.services.session_end import sessions_ended


def _open(app, user_id, kind=SessionKind.BROWSER) -> str:
    with app.app_context():
        session, _ = sessions.create_session(db.session.get(User, user_id), kind=kind)
        db.session.commit()
        return session.id


def _grant(app, client_id: str, user_id: str, session_id: str, *, code=False, access=False, refresh=False) -> None:
    """Rows as the code flow writes them under `session_id`."""
    with app.app_context():
        client, user = db.session.get(OAuthClient, client_id), db.session.get(User, user_id)
        later = datetime.now(timezone.utc) + timedelta(hours=1)
        if code:
            token_records.create_code(client, user, session_id=session_id, redirect_uri="https://rp.example/cb",
                                      scope="openid", auth_time=datetime.now(timezone.utc))
        if access:
            token_records.record_access_token(client, user, uuid.uuid4().hex, "openid", later,
                                              session_id=session_id)
        if refresh:
            token_records.create_refresh_token(client, user, "openid", session_id=session_id)
        db.session.commit()


class Received:
    def __init__(self):
        self.calls = []

    def __call__(self, sender, ended, reason):
        self.calls.append((ended, reason))


def test_end_all_sessions_keeps_the_named_session(app, factories):
    """end_all_sessions ends every other active session of the user (not another user's) and reports how many."""
    user, other = factories.user(), factories.user()
    keep = _open(app, user.id)
    _open(app, user.id)
    _open(app, user.id, SessionKind.API)
    other_id = _open(app, other.id)
    with app.app_context():
        assert session_end.end_all_sessions(db.session.get(User, user.id), reason="password_change",
                                            except_session_id=keep) == 2
        db.session.commit()
        statuses = {s.id: s.status for s in db.session.scalars(select(Session))}
    assert statuses[keep] == statuses[other_id] == "ACTIVE"
    assert sorted(statuses.values()).count("REVOKED") == 2


def test_relying_parties_are_the_clients_with_codes_or_tokens_under_the_session(app, factories):
    """Back-Channel Logout 1.0 2.3: the RPs of a session are those that got a code or token under it;
    an inactive client, or one whose tokens belong to another session, is not one of them."""
    user = factories.user()
    by_code, by_token, by_refresh, elsewhere, retired = (factories.client() for _ in range(5))
    with app.app_context():
        db.session.get(OAuthClient, retired.id).is_active = False
        db.session.commit()
    ended_id, other_id = _open(app, user.id), _open(app, user.id)
    _grant(app, by_code.id, user.id, ended_id, code=True)
    _grant(app, by_token.id, user.id, ended_id, access=True)
    _grant(app, by_refresh.id, user.id, ended_id, refresh=True, access=True)
    _grant(app, retired.id, user.id, ended_id, access=True)
    _grant(app, elsewhere.id, user.id, other_id, access=True)
    received = Received()
    sessions_ended.connect(received, sender=app)
    try:
        with app.app_context():
            ended = session_end.end_sessions([db.session.get(Session, ended_id)], reason="logout")
            db.session.commit()
            parties = {(p.client.client_id, p.session_id, p.subject) for p in ended.relying_parties}
            subject = db.session.get(User, user.id).subject
    finally:
        sessions_ended.disconnect(received, sender=app)
    assert parties == {(c.client_id, ended_id, subject) for c in (by_code, by_token, by_refresh)}
    assert [(e.ended_ids, reason) for e, reason in received.calls] == [([ended_id], "logout")]


def test_ending_a_session_revokes_its_tokens_only(app, factories):
    """Tokens issued under an ended session are revoked; another session's are untouched."""
    user, rp = factories.user(), factories.client()
    ended_id, other_id = _open(app, user.id), _open(app, user.id)
    _grant(app, rp.id, user.id, ended_id, access=True, refresh=True)
    _grant(app, rp.id, user.id, other_id, access=True)
    with app.app_context():
        session_end.end_sessions([db.session.get(Session, ended_id)], reason="revoked")
        db.session.commit()
        revoked = {(row.session_id, row.revoked_at is not None)
                   for model in (AccessToken, RefreshToken) for row in db.session.scalars(select(model))}
    assert revoked == {(ended_id, True), (other_id, False)}


def test_ending_an_ended_session_again_tells_nobody(app, factories):
    """A session already revoked is left as it is, and no signal is sent for it."""
    user = factories.user()
    session_id = _open(app, user.id)
    received = Received()
    sessions_ended.connect(received, sender=app)
    try:
        with app.app_context():
            session_end.end_sessions([db.session.get(Session, session_id)], reason="logout")
            db.session.commit()
            again = session_end.end_sessions([db.session.get(Session, session_id)], reason="logout")
    finally:
        sessions_ended.disconnect(received, sender=app)
    assert again.ended_ids == [] and len(received.calls) == 1
