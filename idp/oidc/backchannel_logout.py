"""OpenID Connect Back-Channel Logout 1.0: a logout token to every relying party of an ended session.

idp.services.session_end decides which sessions ended and which relying parties got codes or
tokens under them; this module subscribes to its `sessions_ended` signal for its app and, in the
same transaction, queues one LogoutDelivery per relying party that registered a
backchannel_logout_uri (section 2.3). Once the response has gone out (WSGI close, as for the account
mail) a daemon thread delivers them, so the user never waits for a relying party. Each attempt
signs a fresh, short-lived logout token (2.4) and POSTs it (2.5) within LOGOUT_DELIVERY_TIMEOUT.
A failure is retried after LOGOUT_RETRY_DELAY, doubling: by the thread while the wait is short, then
by the `deliver_logout_tokens` job, up to LOGOUT_DELIVERY_ATTEMPTS; rows the thread never reached
(a crash, a restart) are the job's too. An attempt first claims its row with a conditional UPDATE
that moves next_attempt_at past its own timeout (a lease), so the thread and any number of job
runners never send one row at the same time.
"""
from __future__ import annotations

import secrets
import threading
import time
from datetime import timedelta

from flask import Flask, after_this_request, current_app, has_request_context
from sqlalchemy import select, update

from idp.extensions import db
from idp.models import LogoutDelivery, LogoutDeliveryStatus, OAuthClient, utcnow
from idp.oidc.tokens import issuer, sign
from idp.security.outbound import OutboundRequestFailed, OutboundURIRefused, guarded_request
from idp.services.session_end import SessionEnd, sessions_ended

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_LIFETIME = 120  # seconds; BCL 2.4 suggests a short exp (the token is used at once)
THREAD_RETRY_WINDOW = 10  # seconds the delivery thread waits for a retry; longer waits are the job's
PENDING = LogoutDeliveryStatus.PENDING.value


class LogoutDeliveryError(Exception):
    """The relying party did not accept the logout token; the message is for the operator's log."""


def setup_backchannel_logout(app: Flask) -> None:
    """Queue logout tokens whenever this app ends sessions."""
    sessions_ended.connect(queue_logout_tokens, sender=app)


def queue_logout_tokens(app: Flask, ended: SessionEnd, reason: str) -> None:
    """One PENDING delivery per (ended session, relying party with a backchannel_logout_uri)."""
    rows = [LogoutDelivery(oauth_client_id=party.client.id, subject=party.subject, session_id=party.session_id,
                           status=PENDING, attempts=0, next_attempt_at=utcnow())
            for party in ended.relying_parties if party.client.backchannel_logout_uri]
    if not rows:
        return
    db.session.add_all(rows)
    db.session.flush()
    app.logger.info("queued %d back-channel logout(s) for %d ended session(s) (%s)", len(rows),
                    len(ended.ended_ids), reason)
    if has_request_context():
        _deliver_after_response(app, [row.id for row in rows])


def _deliver_after_response(app: Flask, ids: list[str]) -> None:
    def attach(response):
        if response.status_code < 400:  # a failed request rolled the rows back
            response.call_on_close(lambda: threading.Thread(target=_deliver_in_thread, args=(app, ids),
                                                            name="backchannel-logout", daemon=True).start())
        return response

    after_this_request(attach)


def _deliver_in_thread(app: Flask, ids: list[str]) -> None:
    with app.app_context():
        try:
            deliver_with_retries(ids)
        except Exception:  # noqa: BLE001 - the job retries whatever this thread could not finish
            app.logger.exception("back-channel logout delivery thread failed; the job will retry")
        finally:
            db.session.remove()


def deliver_with_retries(ids: list[str]) -> None:
    """Attempt each delivery now, then retry the failed ones while the wait is at most THREAD_RETRY_WINDOW."""
    waiting = list(ids)
    while waiting:
        rows = [row for row in map(attempt_delivery, waiting) if row is not None and row.status == PENDING]
        waits = {row.id: (row.next_attempt_at - utcnow()).total_seconds() for row in rows}
        waiting = [row_id for row_id, wait in waits.items() if wait <= THREAD_RETRY_WINDOW]
        if waiting:
            time.sleep(max(0.0, *(waits[row_id] for row_id in waiting)))


def attempt_delivery(delivery_id: str) -> LogoutDelivery | None:
    """One attempt, in its own transactions; the row after it, or None when it was not ours to try
    (delivered, given up, not yet due, or claimed by another worker)."""
    row = _claim(delivery_id)
    if row is None:
        return None
    client = row.client
    try:
        post_logout_token(client.backchannel_logout_uri, logout_token(client, row.subject, row.session_id))
    except LogoutDeliveryError as error:
        _note_failure(row, error)
    else:
        row.status, row.delivered_at, row.last_error = LogoutDeliveryStatus.SENT.value, utcnow(), None
    db.session.commit()
    return row


def _claim(delivery_id: str) -> LogoutDelivery | None:
    cfg = current_app.config
    now = utcnow()
    lease = now + timedelta(seconds=cfg["LOGOUT_DELIVERY_TIMEOUT"] + 30)
    claim = (update(LogoutDelivery)
             .where(LogoutDelivery.id == delivery_id, LogoutDelivery.status == PENDING,
                    LogoutDelivery.next_attempt_at <= now,
                    LogoutDelivery.attempts < cfg["LOGOUT_DELIVERY_ATTEMPTS"])
             .values(attempts=LogoutDelivery.attempts + 1, next_attempt_at=lease))
    claimed = db.session.execute(claim, execution_options={"synchronize_session": False}).rowcount == 1
    db.session.commit()
    return db.session.get(LogoutDelivery, delivery_id) if claimed else None


def _note_failure(row: LogoutDelivery, error: LogoutDeliveryError) -> None:
    cfg = current_app.config
    row.last_error = str(error)[:500]
    if row.attempts >= cfg["LOGOUT_DELIVERY_ATTEMPTS"]:
        row.status = LogoutDeliveryStatus.FAILED.value
        current_app.logger.warning("back-channel logout %s to client %s given up after %d attempt(s): %s",
                                   row.id, row.client.client_id, row.attempts, error)
        return
    row.next_attempt_at = utcnow() + timedelta(seconds=cfg["LOGOUT_RETRY_DELAY"] * 2 ** (row.attempts - 1))
    current_app.logger.info("back-channel logout %s to client %s failed (attempt %d/%d), will retry: %s",
                            row.id, row.client.client_id, row.attempts, cfg["LOGOUT_DELIVERY_ATTEMPTS"], error)


def logout_token(client: OAuthClient, subject: str, session_id: str | None) -> str:
    """BCL 2.4: a JWT typed logout+jwt, signed like the client's ID tokens, with the logout event,
    sub and sid, a unique jti, a short exp, and never a nonce."""
    now = int(utcnow().timestamp())
    claims = {"iss": issuer(), "aud": client.client_id, "iat": now, "exp": now + LOGOUT_TOKEN_LIFETIME,
              "jti": secrets.token_urlsafe(16), "sub": subject, "events": {LOGOUT_EVENT: {}}}
    if session_id:
        claims["sid"] = session_id
    return sign(claims, client.id_token_signed_response_alg or "RS256", typ="logout+jwt")


def post_logout_token(uri: str, token: str) -> None:
    """BCL 2.5: POST logout_token form-encoded, no redirects followed; 200 or 204 is success (2.8).

    The URI passes the outbound guard (https and public addresses only in production), pinned.
    """
    cfg = current_app.config
    try:
        status, _ = guarded_request("POST", uri, allow_private=cfg["ALLOW_PRIVATE_LOGOUT_URI"],
                                    label="backchannel_logout_uri", timeout=cfg["LOGOUT_DELIVERY_TIMEOUT"],
                                    data={"logout_token": token}, headers={"Cache-Control": "no-store"})
    except OutboundURIRefused as error:
        raise LogoutDeliveryError(str(error)) from None
    except OutboundRequestFailed as error:
        raise LogoutDeliveryError(f"POST {error}") from None
    if status not in (200, 204):
        raise LogoutDeliveryError(f"the relying party answered HTTP {status}")


def due_delivery_ids(limit: int = 100) -> list[str]:
    """PENDING deliveries whose next attempt is due, oldest first."""
    query = (select(LogoutDelivery.id)
             .where(LogoutDelivery.status == PENDING, LogoutDelivery.next_attempt_at <= utcnow(),
                    LogoutDelivery.attempts < current_app.config["LOGOUT_DELIVERY_ATTEMPTS"])
             .order_by(LogoutDelivery.created_at).limit(limit))
    return list(db.session.scalars(query))


def deliver_logout_tokens() -> str:
    """The `deliver_logout_tokens` job: one attempt for each due delivery (each commits its own)."""
    outcomes = [row.status for row in map(attempt_delivery, due_delivery_ids()) if row is not None]
    sent = outcomes.count(LogoutDeliveryStatus.SENT.value)
    return f"delivered {sent} back-channel logout token(s), {len(outcomes) - sent} failed"
