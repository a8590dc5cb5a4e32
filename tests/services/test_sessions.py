"""Session service: create, authenticate, slide, list, revoke, expire; and `flask cleanup-sessions`."""
from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from idp.errors import NotFound, Unauthorized
from idp.extensions import db
from idp.models import Session, SessionKind, SessionStatus, User
from idp.security.secrets import hash_token
from idp.services import sessions

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def small_app(make_app):
    """Idle window 60 s, absolute cap 300 s."""
    return make_app(SESSION_IDLE_TIMEOUT=60, SESSION_ABSOLUTE_TIMEOUT=300)


def _open(app, user_id, kind=SessionKind.API):
    with app.app_context():
        session, token = sessions.create_session(db.session.get(User, user_id), kind=kind, ip_address="10.0.0.1")
        db.session.commit()
        return session.id, token


def test_create_session_stores_only_the_token_hash(app, factories):
    """The bearer token is returned once; the database holds its SHA-256 only."""
    user = factories.user()
    session_id, token = _open(app, user.id)
    with app.app_context():
        row = db.session.get(Session, session_id)
        assert row.token_hash == hash_token(token) != token
        assert row.status == SessionStatus.ACTIVE.value and row.kind == "api" and row.amr == ["pwd"]


def test_authenticate_slides_idle_window(small_app, factories):
    """Each authenticated use sets expires_at to now + idle."""
    user = factories.user()
    with time_machine.travel(T0, tick=False) as traveller:
        session_id, token = _open(small_app, user.id)
        traveller.shift(30)
        with small_app.app_context():
            session = sessions.authenticate(token)
            assert session.expires_at == T0 + timedelta(seconds=90)


def test_authenticate_refuses_idle_expired_session(small_app, factories):
    """No use within the idle window: the token stops working."""
    user = factories.user()
    with time_machine.travel(T0, tick=False) as traveller:
        _, token = _open(small_app, user.id)
        traveller.shift(61)
        with small_app.app_context(), pytest.raises(Unauthorized):
            sessions.authenticate(token)


def test_authenticate_refuses_session_past_absolute_cap(small_app, factories):
    """Constant activity cannot keep a session alive past created_at + absolute timeout."""
    user = factories.user()
    with time_machine.travel(T0, tick=False) as traveller:
        _, token = _open(small_app, user.id)
        for _ in range(5):
            traveller.shift(50)
            with small_app.app_context():
                sessions.authenticate(token)
                db.session.commit()
        traveller.shift(50)  # 300 s after creation: still inside the idle window, but at the cap
        with small_app.app_context(), pytest.raises(Unauthorized):
            sessions.authenticate(token)


def test_authenticate_refuses_wrong_kind_unknown_token_and_inactive_user(app, factories):
    """Browser tokens are not API tokens; unknown tokens and disabled users are refused."""
    user = factories.user()
    _, browser_token = _open(app, user.id, SessionKind.BROWSER)
    _, api_token = _open(app, user.id)
    with app.app_context():
        with pytest.raises(Unauthorized):
            sessions.authenticate(browser_token, kind=SessionKind.API)
        with pytest.raises(Unauthorized):
            sessions.authenticate("no-such-token")
        with pytest.raises(Unauthorized):
            sessions.authenticate(None)
        db.session.get(User, user.id).is_active = False
        db.session.commit()
        with pytest.raises(Unauthorized):
            sessions.authenticate(api_token)


def test_list_active_excludes_revoked_expired_and_other_users(small_app, factories):
    """Only the user's own live sessions are listed, newest first."""
    user, other = factories.user(), factories.user()
    with time_machine.travel(T0, tick=False) as traveller:
        stale_id, _ = _open(small_app, user.id)
        traveller.shift(120)
        revoked_id, _ = _open(small_app, user.id)
        traveller.shift(1)
        live_id, _ = _open(small_app, user.id)
        _open(small_app, other.id)
        with small_app.app_context():
            sessions.revoke(db.session.get(Session, revoked_id))
            assert [s.id for s in sessions.list_active(db.session.get(User, user.id))] == [live_id]


def test_get_own_session_hides_other_users_sessions(app, factories):
    """Another user's session id answers NotFound, exactly like an unknown id."""
    user, other = factories.user(), factories.user()
    mine, _ = _open(app, user.id)
    theirs, _ = _open(app, other.id)
    with app.app_context():
        me = db.session.get(User, user.id)
        assert sessions.get_own_session(me, mine).id == mine
        for session_id in (theirs, "00000000-0000-0000-0000-000000000000"):
            with pytest.raises(NotFound):
                sessions.get_own_session(me, session_id)


def test_cleanup_sessions_command_marks_expired_sessions(small_app, factories):
    """`flask cleanup-sessions` soft-marks sessions past expiry as EXPIRED and leaves live ones."""
    user = factories.user()
    with time_machine.travel(T0, tick=False) as traveller:
        old_id, _ = _open(small_app, user.id)
        traveller.shift(61)
        live_id, _ = _open(small_app, user.id)
        result = small_app.test_cli_runner().invoke(args=["cleanup-sessions"])
    assert result.exit_code == 0 and "marked 1 session(s) EXPIRED" in result.output
    with small_app.app_context():
        assert db.session.get(Session, old_id).status == "EXPIRED"
        assert db.session.get(Session, live_id).status == "ACTIVE"


def test_slid_idle_window_is_stored_and_never_passes_the_absolute_cap(small_app, factories):
    """touch() writes the slid window to the database (read back fresh), capped at the absolute limit."""
    user = factories.user()
    with time_machine.travel(T0, tick=False) as traveller:
        session_id, token = _open(small_app, user.id)
        for elapsed in (50, 100, 150, 200, 250):
            traveller.shift(50)
            with small_app.app_context():
                sessions.authenticate(token)
                db.session.commit()
            with small_app.app_context():
                row = db.session.get(Session, session_id)
                assert row.last_seen_at == T0 + timedelta(seconds=elapsed)
                assert row.expires_at == min(T0 + timedelta(seconds=elapsed + 60), T0 + timedelta(seconds=300))


def test_browser_session_window_slides_coarsely(app, factories):
    """An SSO session (idle 900 s) is not rewritten by requests within a minute of its last slide;
    past that minute it slides to now + idle, so it never ends more than a minute early."""
    user = factories.user()
    with time_machine.travel(T0, tick=False) as traveller:
        session_id, token = _open(app, user.id, kind=SessionKind.BROWSER)
        for shift, expected_slide in ((30, 0), (29, 0), (2, 61)):
            traveller.shift(shift)
            with app.app_context():
                sessions.touch(sessions.find_live_session(token), coarse=True)
                db.session.commit()
            with app.app_context():
                row = db.session.get(Session, session_id)
                assert row.expires_at == T0 + timedelta(seconds=900 + expected_slide)


def test_coarse_touch_step_scales_with_short_idle_windows():
    """A short idle window lags by a fifteenth of itself at most, a long one by a minute."""
    assert sessions.coarse_touch_step(900) == 60
    assert sessions.coarse_touch_step(60) == 4
    assert sessions.coarse_touch_step(10) == 1
    assert sessions.coarse_touch_step(86400) == 60
