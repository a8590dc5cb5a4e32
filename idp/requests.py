"""Per-request plumbing: the request id hooks, and one commit or rollback per request."""
from __future__ import annotations

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession

from idp.error_handlers import render_error
from idp.errors import Conflict
from idp.extensions import db
from idp.request_id import assign_request_id, echo_request_id
from idp.security.headers import apply_security_headers
from idp.services import audit

# Set when the request's ORM session puts a connection in its transaction (a statement ran or a flush
# happened); cleared when finish_transaction ends the transaction.
BEGAN = "idp.transaction_began"


def _mark_began(session, transaction, connection) -> None:
    session.info[BEGAN] = True


def has_pending_work() -> bool:
    """Whether the request's session can hold anything to commit: a database transaction really
    began (a statement ran), or objects wait to be flushed. Without either, a commit is a no-op."""
    if not db.session.registry.has():  # no ORM session was even opened in this app context
        return False
    session = db.session
    return bool(session.info.pop(BEGAN, False) or session.new or session.dirty or session.deleted)


def finish_transaction(response):
    """Commit a successful request's work once; roll back a failed one, keeping failure audits.

    A request that touched no database at all (client credentials, discovery, JWKS) skips the
    commit: there is nothing to write, and app-context teardown closes the session either way.
    """
    if response.status_code >= 400:
        if db.session.registry.has():
            db.session.info.pop(BEGAN, None)
            db.session.rollback()
        failures = audit.pending_failures()
        if failures:
            db.session.add_all(failures)
            db.session.commit()
        return response
    if not has_pending_work():
        return response
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        # The replacement response was not seen by the header hooks that already ran.
        return apply_security_headers(render_error(Conflict("The request conflicts with existing data.")))
    return response


class SessionCookieInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session (it carries the CSRF token), its serializer built once per
    secret key instead of on every request."""

    def __init__(self):
        self._serializer: tuple[tuple, object] | None = None

    def get_signing_serializer(self, app: Flask):
        identity = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        if self._serializer is None or self._serializer[0] != identity:
            self._serializer = (identity, super().get_signing_serializer(app))
        return self._serializer[1]


def setup_requests(app: Flask) -> None:
    app.session_interface = SessionCookieInterface()
    if not event.contains(OrmSession, "after_begin", _mark_began):
        event.listen(OrmSession, "after_begin", _mark_began)
    app.before_request(assign_request_id)
    # after_request hooks run in reverse: the id is echoed after the commit, on whatever it returns.
    app.after_request(echo_request_id)
    app.after_request(finish_transaction)
