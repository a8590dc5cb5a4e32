"""Session life: create, authenticate by token, slide the idle window, revoke, expire."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from flask import current_app
from sqlalchemy import bindparam, delete, inspect, select, union_all, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from idp.errors import NotFound, Unauthorized
from idp.extensions import db
from idp.models import Session, SessionKind, SessionStatus, User, utcnow
from idp.models.session import is_live as session_is_live
from idp.security.secrets import hash_token, new_token
from idp.services import expiry
from idp.services import tokens as token_records


@cache
def _statement(name: str):
    """Hot-path statements built once (SQLAlchemy memoizes each statement's cache key on the object)."""
    table, users = Session.__table__, User.__table__
    return {
        # INNER JOIN: sessions.user_id is NOT NULL with a foreign key, so no session lacks its user.
        "find_live_session": (select(Session).options(joinedload(Session.user, innerjoin=True))
                              .where(Session.token_hash == bindparam("token_hash"))),
        "find_sign_in": (select(*[table.c[name] for name in SIGN_IN_COLUMNS], users.c.subject, users.c.is_active)
                         .join(users, users.c.id == table.c.user_id)
                         .where(table.c.token_hash == bindparam("token_hash"))),
        "touch": (update(table).where(table.c.id == bindparam("session_id"))
                  .values(last_seen_at=bindparam("seen"), expires_at=bindparam("expires"))),
    }[name]


@dataclass(frozen=True)
class SignedInUser:
    id: str
    subject: str


@dataclass(frozen=True)
class SignIn:
    """A live session as the authorization endpoint reads it, from one Core SELECT of the columns it
    uses: loading the ORM Session and User (two rows of 37 columns) cost more than the query. The
    attributes are the ORM Session's own names, so code that reads a session takes either."""

    id: str
    user_id: str
    user: SignedInUser
    kind: str
    auth_time: datetime
    acr: str | None
    amr: list | None
    expires_at: datetime
    absolute_expires_at: datetime


SIGN_IN_COLUMNS = ("id", "user_id", "kind", "status", "auth_time", "acr", "amr", "expires_at", "absolute_expires_at")


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


def find_sign_in(token: str | None, *, kind: SessionKind) -> SignIn | None:
    """The active, unexpired session of `kind` behind `token`, of an active user, as a SignIn; or None."""
    if not token:
        return None
    row = db.session.execute(_statement("find_sign_in"), {"token_hash": hash_token(token)}).first()
    if row is None or row.kind != kind.value or not row.is_active or not session_is_live(row.status, row.expires_at,
                                                                                         utcnow()):
        return None
    return sign_in_from(row)


def sign_in_from(row) -> SignIn:
    """The SignIn of a row with the SIGN_IN_COLUMNS and the user's `subject` (find_sign_in, live_sign_in)."""
    return SignIn(id=row.id, user_id=row.user_id, user=SignedInUser(row.user_id, row.subject), kind=row.kind,
                  auth_time=row.auth_time, acr=row.acr, amr=row.amr, expires_at=row.expires_at,
                  absolute_expires_at=row.absolute_expires_at)


@cache
def live_sign_in():
    """find_sign_in's answer as a CTE, for a statement that writes what a sign-in allows in the same
    round trip (idp.services.tokens.code_insert_on_sign_in): the session behind the `sign_in_token_hash`
    bind parameter, of kind `sign_in_kind`, active and unexpired at `sign_in_now`, of an active user;
    no row when there is none. The liveness find_sign_in checks in Python is checked here in SQL."""
    table, users = Session.__table__, User.__table__
    return (select(*[table.c[name] for name in SIGN_IN_COLUMNS], users.c.subject)
            .join(users, users.c.id == table.c.user_id)
            .where(table.c.token_hash == bindparam("sign_in_token_hash", type_=table.c.token_hash.type),
                   table.c.kind == bindparam("sign_in_kind", type_=table.c.kind.type),
                   table.c.status == SessionStatus.ACTIVE.value,
                   table.c.expires_at > bindparam("sign_in_now", type_=table.c.expires_at.type),
                   users.c.is_active.is_(True))
            .cte("sign_in"))


def live_sign_in_values(token: str, kind: SessionKind) -> dict:
    """The bind parameters of live_sign_in for the session token `token`."""
    return {"sign_in_token_hash": hash_token(token), "sign_in_kind": kind.value, "sign_in_now": utcnow()}


def authenticate(token: str | None, *, kind: SessionKind | None = None) -> Session:
    """The live session behind `token`, its idle window slid forward; 401 when there is none."""
    session = find_live_session(token, kind=kind)
    if session is None:
        raise Unauthorized("The session is invalid or has expired.")
    touch(session)
    return session


def touch(session: Session | SignIn, *, coarse: bool = False) -> None:
    """Slide the idle window (Session.refresh never passes the absolute cap).

    A persistent session is written with one Core UPDATE of the two columns, its loaded state set to
    match, so the commit has no unit-of-work flush to compute for it (the hot path of every browser
    and API request); a SignIn is only written. `coarse` (the browser SSO session) skips the write
    while the window would move by less than a fifteenth of itself (at most a minute): an SSO session
    then ends at most that much before the exact idle limit, and a burst of authorize requests costs
    no UPDATE each.
    """
    idle, _ = _windows()
    orm = isinstance(session, Session)
    if orm and not inspect(session).persistent:
        session.refresh(utcnow(), idle)
        return
    now = utcnow()
    # The same window as Session.refresh: now + idle, never past the absolute cap.
    expires = min(now + timedelta(seconds=idle), session.absolute_expires_at)
    if coarse and expires - session.expires_at < timedelta(seconds=coarse_touch_step(idle)):
        return
    db.session.execute(_statement("touch"), {"session_id": session.id, "seen": now, "expires": expires})
    if orm:
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
    size = expiry.batch_size(limit)
    # The oldest of each status, merged: each is a range scan of the (status, expires_at) index, where
    # one scan for all statuses would read every row past the cutoff to sort them (migration 0011).
    oldest = union_all(*[select(table.c.id, table.c.status, table.c.expires_at)
                         .where(table.c.status == status.value, table.c.expires_at < cutoff)
                         .order_by(table.c.expires_at).limit(size).subquery().select()
                         for status in SessionStatus]).subquery()
    batch = db.session.execute(select(oldest.c.id, oldest.c.status).order_by(oldest.c.expires_at).limit(size)).all()
    if not batch:
        return 0
    token_records.revoke_tokens_of_sessions([sid for sid, status in batch if status == SessionStatus.REVOKED.value])
    return db.session.execute(delete(table).where(table.c.id.in_([sid for sid, _ in batch])),
                              execution_options={"synchronize_session": False}).rowcount
