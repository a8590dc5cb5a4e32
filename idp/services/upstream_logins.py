"""Started upstream sign-ins: the `state` (SAML RelayState) sent upstream, bound to the browser that
started it, for one upstream, used once, for UPSTREAM_LOGIN_LIFETIME seconds.

RFC 6749 10.12 and RFC 9700 4.7: a callback is accepted only with a state this IdP issued to this very
browser (the binding cookie's hash must match), so an attacker cannot finish their own upstream sign-in
in a victim's browser (login CSRF). RFC 9700 4.4 (mix-up): a state started for one upstream is refused
at another upstream's callback.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from idp.extensions import db
from idp.models import Upstream, UpstreamLogin, User, utcnow
from idp.security.secrets import hash_token, tokens_equal
from idp.services import expiry, upstreams

# "logout": a SAML LogoutRequest we sent after our sign-out (the continuation waits for its LogoutResponse).
PURPOSES = ("sign_in", "link", "logout")
SIGN_IN_PURPOSES = ("sign_in", "link")


class FederatedSignInRefused(Exception):
    """A federated sign-in is not accepted. `reason` is the audit code, `message` is safe to show,
    `status` the page's HTTP status (400 for a bad answer, 403 for a disabled account, 404 for an
    upstream that does not exist or is disabled)."""

    def __init__(self, reason: str, message: str, status: int = 400, detail: str | None = None):
        super().__init__(message)
        self.reason, self.message, self.status, self.detail = reason, message, status, detail


RESTART = "Go back to the sign-in page and start again."


def _refused(reason: str, what: str) -> FederatedSignInRefused:
    return FederatedSignInRefused(reason, f"{what} {RESTART}")


@dataclass(frozen=True)
class StartedLogin:
    """A consumed upstream sign-in: what the callback needs to finish it."""

    upstream_id: str
    purpose: str
    user_id: str | None
    authorization_request_id: str | None
    saved: dict


def start_login(upstream: Upstream, *, state: str, browser_hash: str, saved: dict,
                authorization_request_id: str | None = None, purpose: str = "sign_in",
                user: User | None = None) -> UpstreamLogin:
    """Remember a started upstream sign-in (only the state's hash; the connector's data encrypted)."""
    if purpose not in PURPOSES or (purpose == "link") != (user is not None):
        raise ValueError("purpose 'link' needs the signed-in user, and only it does")
    now = utcnow()
    row = UpstreamLogin(state_hash=hash_token(state), browser_hash=browser_hash, upstream_id=upstream.id,
                        authorization_request_id=authorization_request_id, purpose=purpose,
                        user_id=user.id if user is not None else None, saved_encrypted=upstreams.encrypt_json(saved),
                        created_at=now,
                        expires_at=now + timedelta(seconds=current_app.config["UPSTREAM_LOGIN_LIFETIME"]))
    db.session.add(row)
    db.session.flush()
    return row


def consume_login(state: str | None, *, browser_hash: str | None, upstream: Upstream,
                  purposes: tuple[str, ...] = SIGN_IN_PURPOSES) -> StartedLogin:
    """Use up the sign-in `state` names, or FederatedSignInRefused: unknown (or started for another of
    the `purposes`: a logout's state never finishes a sign-in), from another browser, for another
    upstream, expired, or already used (one conditional UPDATE, so two uses cannot both win)."""
    row = _find(state)
    if row is None or row.purpose not in purposes:
        raise _refused("state_unknown", "This sign-in was not started here or is no longer known.")
    if not browser_hash or not tokens_equal(row.browser_hash, browser_hash):
        raise _refused("state_other_browser", "This sign-in was started in another browser.")
    if row.upstream_id != upstream.id:
        raise _refused("state_other_upstream", "This answer came from another provider than the one you chose.")
    if row.expires_at <= utcnow():
        raise _refused("state_expired", "This sign-in took too long and has expired.")
    result = db.session.execute(
        update(UpstreamLogin).where(UpstreamLogin.id == row.id, UpstreamLogin.used_at.is_(None))
        .values(used_at=utcnow()), execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        raise _refused("state_used", "This sign-in answer was already used.")
    return StartedLogin(upstream_id=row.upstream_id, purpose=row.purpose, user_id=row.user_id,
                        authorization_request_id=row.authorization_request_id,
                        saved=upstreams.decrypt_json(row.saved_encrypted))


def _find(state: str | None) -> UpstreamLogin | None:
    if not state or len(state) > 512:
        return None
    return db.session.scalars(select(UpstreamLogin).where(UpstreamLogin.state_hash == hash_token(state))).first()


def purge_expired(now: datetime | None = None, limit: int | None = None) -> int:
    """Delete at most `limit` (JOB_PURGE_BATCH) started sign-ins past their expiry, used or not (the job
    runner calls this)."""
    table = UpstreamLogin.__table__
    return expiry.delete_batch(table, table.c.expires_at < (now or utcnow()), expiry.batch_size(limit))
