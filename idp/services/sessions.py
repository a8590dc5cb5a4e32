"""Session life: create, authenticate by token, slide the idle window, revoke, expire."""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from flask import current_app
from sqlalchemy import bindparam, delete, inspect, select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from idp.errors import NotFound, Unauthorized
from idp.extensions import db
from idp.models import Session, SessionKind, SessionStatus, User, utcnow
from idp.security.secrets import hash_token, new_token
from idp.services import expiry
from idp.services import tokens as token_records


@cache
def _statement(name: str):
    """Hot-path statements built once (SQLAlchemy memoizes each statement's cache key on the object)."""
    table = Session.__table__
    return {
        # INNER JOIN: sessions.user_id is NOT NULL with a foreign key, so no session lacks its user.
        "find_live_session": (select(Session).options(joinedload(Session.user, innerjoin=True))
                              .where(Session.token_hash == bindparam("token_hash"))),
        "touch": (update(table).where(table.c.id == bindparam("session_id"))
                  .values(last_seen_at=bindparam("seen"), expires_at=bindparam("expires"))),
    }[name]


def _windows() -> tuple[int, int]:
    cfg = current_app.config
    return cfg["SESSION_IDLE_TIMEOUT"], cfg["SESSION_ABSOLUTE_TIMEOUT"]


def create_session(user: User, *, kind: SessionKind = SessionKind.API, ip_address: str | None = None,
                   user_agent: str | None = None, amr: list[str] | None = None) -> tuple[Session, str]:
    """Open a session for `user`; returns it and the bearer token, whose hash alone is stored."""
    idle, absolute = _windows()
    token = new_token()
    session = Session(user_id=user.id, user=user, token_hash=hash_token(token), kind=kind.value,
                      ip_address=ip_address, user_agent=(user_agent or "")[:512] or None,
                      amr=amr or ["pwd"])
    session.start(utcnow(), idle, absolute)
    db.session.add(session)
    db.session.flush()
    return session, token


def find_live_session(token: str | None, *, kind: SessionKind | None = None) -> Session | None:
    """The active, unexpired session behind `token`, or None."""
    if not token:
        return None
    session = db.session.scalars(_statement("find_live_session"), {"token_hash": hash_token(token)}).first()
    if session is None or (kind is not None and session.kind != kind.value):
        return None
    if not session.is_live(utcnow()) or not session.user.is_active:
        return None
    return session


def authenticate(token: str | None, *, kind: SessionKind | None = None) -> Session:
    """The live session behind `token`, its idle window slid forward; 401 when there is none."""
    session = find_live_session(token, kind=kind)
    if session is None:
        raise Unauthorized("The session is invalid or has expired.")
    touch(session)
    return session


def touch(session: Session, *, coarse: bool = False) -> None:
    """Slide the idle window (Session.refresh never passes the absolute cap).

    A persistent session is written with one Core UPDATE of the two columns, its loaded state set to
    match, so the commit has no unit-of-work flush to compute for it (the hot path of every browser
    and API request). `coarse` (the browser SSO session) skips the write while the window would move
    by less than a fifteenth of itself (at most a minute): an SSO session then ends at most that
    much before the exact idle limit, and a burst of authorize requests costs no UPDATE each.
    """
    idle, _ = _windows()
    if not inspect(session).persistent:
        session.refresh(utcnow(), idle)
        return
    now = utcnow()
    # The same window as Session.refresh: now + idle, never past the absolute cap.
    expires = min(now + timedelta(seconds=idle), session.absolute_expires_at)
    if coarse and expires - session.expires_at < timedelta(seconds=coarse_touch_step(idle)):
        return
    db.session.execute(_statement("touch"), {"session_id": session.id, "seen": now, "expires": expires})
    set_committed_value(session, "last_seen_at", now)
    set_committed_value(session, "expires_at", expires)


def coarse_touch_step(idle: int) -> int:
    """Seconds a browser session's idle window may lag: idle / 15, between 1 and 60."""
    return max(1, min(60, idle // 15))


def list_active(user: User) -> list[Session]:
    now = utcnow()
    query = (select(Session)
             .where(Session.user_id == user.id, Session.status == SessionStatus.ACTIVE.value,
                    Session.expires_at > now)
             .order_by(Session.created_at.desc()))
    return list(db.session.scalars(query))


def get_own_session(user: User, session_id: str) -> Session:
    """One of `user`'s sessions; another user's session is reported as missing."""
    session = db.session.get(Session, session_id)
    if session is None or session.user_id != user.id:
        raise NotFound("Session not found.")
    return session


def revoke(session: Session) -> None:
    """Mark one session revoked, nothing more; ending sessions on purpose is idp.services.session_end."""
    if session.status == SessionStatus.ACTIVE.value:
        session.revoke(utcnow())


def expire_stale(now: datetime | None = None, limit: int | None = None) -> int:
    """Mark at most `limit` (JOB_PURGE_BATCH) active sessions past their expiry as EXPIRED; returns how many."""
    table = Session.__table__
    stale = (select(table.c.id)
             .where(table.c.status == SessionStatus.ACTIVE.value, table.c.expires_at <= (now or utcnow()))
             .order_by(table.c.expires_at).limit(expiry.batch_size(limit)).scalar_subquery())
    query = update(table).where(table.c.id.in_(stale)).values(status=SessionStatus.EXPIRED.value)
    return db.session.execute(query, execution_options={"synchronize_session": False}).rowcount


def purge_ended(now: datetime | None = None, limit: int | None = None) -> int:
    """Delete at most `limit` (JOB_PURGE_BATCH) sessions whose expiry passed SESSION_RETENTION seconds ago,
    oldest first; returns how many went.

    Every session expires by its absolute cap, revoked ones too, so no row lives longer than
    SESSION_ABSOLUTE_TIMEOUT + SESSION_RETENTION; the retention keeps an ended session readable for
    the account page, logout and audit a while. Tokens only name their session by id (as codes and
    logout deliveries do), and a token outliving an expired session stays valid with or without the
    row. A token under a revoked session is refused because the row says REVOKED, so the tokens still
    unrevoked under the revoked sessions of the batch are revoked first: deleting the row must not
    bring them back.
    """
    table = Session.__table__
    cutoff = (now or utcnow()) - timedelta(seconds=current_app.config["SESSION_RETENTION"])
    batch = db.session.execute(select(table.c.id, table.c.status).where(table.c.expires_at < cutoff)
                               .order_by(table.c.expires_at).limit(expiry.batch_size(limit))).all()
    if not batch:
        return 0
    token_records.revoke_tokens_of_sessions([sid for sid, status in batch if status == SessionStatus.REVOKED.value])
    return db.session.execute(delete(table).where(table.c.id.in_([sid for sid, _ in batch])),
                              execution_options={"synchronize_session": False}).rowcount
