"""Per-request plumbing: the request id, and one commit or rollback per request."""
from __future__ import annotations

import re
import uuid

from flask import Flask, g, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession

from idp.errors import Conflict
from idp.extensions import db
from idp.services import audit

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def assign_request_id() -> None:
    """Take a well-formed incoming X-Request-ID (so a proxy's id runs through), else make a uuid4."""
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if REQUEST_ID_PATTERN.fullmatch(incoming) else str(uuid.uuid4())


def current_request_id() -> str | None:
    """This request's id, assigned on first use (an extension may answer before our hook ran)."""
    if not has_request_context():
        return None
    if "request_id" not in g:
        assign_request_id()
    return g.request_id


def echo_request_id(response):
    response.headers["X-Request-ID"] = current_request_id() or ""
    return response


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
        from idp.error_handlers import render_error
        from idp.security.headers import apply_security_headers

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
