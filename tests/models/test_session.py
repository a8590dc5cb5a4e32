"""Session windows: sliding idle expiry capped by the absolute expiry (seed README, Session Management)."""
from datetime import datetime, timedelta, timezone

from idp.models import Session, SessionStatus

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
IDLE, ABSOLUTE = 900, 28800


def started() -> Session:
    session = Session(status=SessionStatus.ACTIVE.value)
    session.start(T0, IDLE, ABSOLUTE)
    return session


def test_start_opens_idle_and_absolute_windows():
    """A new session expires after the idle timeout, and at the latest after the absolute one."""
    session = started()
    assert session.created_at == session.last_seen_at == session.auth_time == T0
    assert session.expires_at == T0 + timedelta(seconds=IDLE)
    assert session.absolute_expires_at == T0 + timedelta(seconds=ABSOLUTE)


def test_idle_window_is_capped_by_a_shorter_absolute_window():
    """With absolute < idle the session never outlives the absolute cap."""
    session = Session()
    session.start(T0, 600, 60)
    assert session.expires_at == T0 + timedelta(seconds=60)


def test_refresh_slides_the_idle_window():
    """Activity sets expires_at = now + idle."""
    session = started()
    later = T0 + timedelta(minutes=10)
    session.refresh(later, IDLE)
    assert session.last_seen_at == later
    assert session.expires_at == later + timedelta(seconds=IDLE)


def test_refresh_never_passes_the_absolute_cap():
    """Near the end of the absolute window, activity cannot extend the session past it."""
    session = started()
    near_end = T0 + timedelta(seconds=ABSOLUTE - 60)
    session.refresh(near_end, IDLE)
    assert session.expires_at == session.absolute_expires_at


def test_is_live_until_expiry_only_when_active():
    """A session is live strictly before expires_at and only while ACTIVE."""
    session = started()
    assert session.is_live(T0 + timedelta(seconds=IDLE - 1))
    assert not session.is_live(T0 + timedelta(seconds=IDLE))
    session.revoke(T0 + timedelta(seconds=1))
    assert session.status == SessionStatus.REVOKED.value and session.revoked_at == T0 + timedelta(seconds=1)
    assert not session.is_live(T0 + timedelta(seconds=2))
