"""Ending sessions on purpose: the one place a session is signed out or revoked.

Every path that ends sessions (sign-out, RP-initiated logout, revoking a session on the account
page or through the API, a password change or reset, account deletion) goes through
`end_sessions`. It revokes the sessions and the tokens issued under them, works out which relying
parties got a code or a token under them, and sends the `sessions_ended` signal (sender: the app)
with that list, in the request's transaction.

Services must not know the OpenID Provider (it owns the signing keys), so the provider subscribes:
idp.oidc connects its back-channel logout queue (OpenID Connect Back-Channel Logout 1.0) for its
own app in `setup_oidc`, and the queued rows commit or roll back with the sessions' end. The
signed-out page renders the front-channel iframes (Front-Channel Logout 1.0) from the same list,
through `frontchannel_logout_uris`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

from blinker import Namespace
from flask import current_app
from sqlalchemy import select

from idp.extensions import db
from idp.models import OAuthClient, Session, SessionStatus, User, utcnow
from idp.services import audit, sessions
from idp.services import tokens as token_records

signals = Namespace()
# Sent with `ended` (a SessionEnd) after sessions ended; subscribers add rows to the same transaction.
sessions_ended = signals.signal("sessions-ended")


@dataclass(frozen=True)
class RelyingPartySession:
    """A relying party that got a code or token under an ended session, and that session's user."""

    client: OAuthClient
    session_id: str
    subject: str


@dataclass
class SessionEnd:
    """What one call ended: the sessions asked for, the ids that were live, and their relying parties."""

    sessions: list[Session]
    ended_ids: list[str] = field(default_factory=list)
    relying_parties: list[RelyingPartySession] = field(default_factory=list)


def end_sessions(targets: list[Session], *, reason: str) -> SessionEnd:
    """End the active sessions among `targets`, revoke their tokens and tell the subscribers.

    Sessions already revoked or expired are left as they are (ending one twice is a no-op). `reason`
    (logout, revoked, password_change, password_reset, account_deleted) is for the subscribers' logs.
    """
    live = [s for s in targets if s.status == SessionStatus.ACTIVE.value]
    now = utcnow()
    for session in live:
        session.revoke(now)
    subjects = {session.id: session.user.subject for session in live}
    ended = SessionEnd(list(targets), list(subjects))
    if not live:
        return ended
    db.session.flush()
    token_records.revoke_tokens_of_sessions(ended.ended_ids)
    ended.relying_parties = [RelyingPartySession(client, sid, subjects[sid])
                             for client, sid in token_records.clients_of_sessions(ended.ended_ids)]
    sessions_ended.send(current_app._get_current_object(), ended=ended, reason=reason)
    return ended


def active_sessions(user: User, *, except_session_id: str | None = None) -> list[Session]:
    """Every active session of `user` (expired or not), but one."""
    query = select(Session).where(Session.user_id == user.id, Session.status == SessionStatus.ACTIVE.value)
    if except_session_id:
        query = query.where(Session.id != except_session_id)
    return list(db.session.scalars(query))


def end_all_sessions(user: User, *, reason: str, except_session_id: str | None = None) -> int:
    """End every active session of `user` but one (password change, reset, deletion); how many ended."""
    return len(end_sessions(active_sessions(user, except_session_id=except_session_id), reason=reason).ended_ids)


def sign_out(targets: list[Session], *, channel: str, **details) -> SessionEnd:
    """Sign out: end the caller's own session (and, for RP-initiated logout, the session its ID token
    names) and record a `logout` audit event for each session that ended."""
    ended = end_sessions(targets, reason="logout")
    for session in targets:
        if session.id in ended.ended_ids:
            audit.record("logout", actor_user_id=session.user_id, target_type="session", target_id=session.id,
                         details={"channel": channel, **details})
    return ended


def revoke_own_session(user: User, session_id: str, *, channel: str) -> SessionEnd:
    """Revoke one of `user`'s sessions (404 for anyone else's; an ended one again is a no-op); records
    `session.revoke`. The account page and the API both end a session through this."""
    session = sessions.get_own_session(user, session_id)
    ended = end_sessions([session], reason="revoked")
    audit.record("session.revoke", actor_user_id=user.id, target_type="session", target_id=session.id,
                 details={"channel": channel})
    return ended


def frontchannel_logout_uris(ended: SessionEnd) -> list[str]:
    """The iframes a signed-out page renders (Front-Channel Logout 1.0 section 4): one per relying
    party of the ended sessions that registered a frontchannel_logout_uri, with `iss` and `sid`
    added to its query when it set frontchannel_logout_session_required (section 2)."""
    issuer = current_app.config["ISSUER"]
    uris: list[str] = []
    for party in ended.relying_parties:
        uri = party.client.frontchannel_logout_uri
        if not uri:
            continue
        if party.client.frontchannel_logout_session_required:
            uri = _with_query(uri, {"iss": issuer, "sid": party.session_id})
        if uri not in uris:
            uris.append(uri)
    return uris


def _with_query(uri: str, params: dict) -> str:
    """`uri` with `params` appended to its query; the registered query component is kept (BCL/FCL 2)."""
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
