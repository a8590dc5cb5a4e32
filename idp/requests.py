"""Per-request plumbing: the request id hooks, bounded JSON bodies, and one commit or rollback per
request (a lost database connection answers 503, like any other database failure)."""
from __future__ import annotations

from flask import Flask, Request, current_app
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession
from werkzeug.exceptions import BadRequest

from idp.error_handlers import handle_error, is_database_unavailable, render_error
from idp.errors import Conflict
from idp.extensions import db
from idp.request_id import assign_request_id, echo_request_id
from idp.security import bounded_json
from idp.security.bounded_json import UnacceptableJSON
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
        return _finish_failed(response)
    if not has_pending_work():
        return response
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        # The replacement response was not seen by the header hooks that already ran.
        return _replacement(render_error(Conflict("The request conflicts with existing data.")))
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        return _database_unavailable(exc)
    return response


def _finish_failed(response):
    """Roll the request back, then write the failure audits it recorded (they outlive the rollback)."""
    if db.session.registry.has():
        db.session.info.pop(BEGAN, None)
        db.session.rollback()
    failures = audit.pending_failures()
    if not failures:
        return response
    try:
        db.session.add_all(failures)
        db.session.commit()
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        return response if response.status_code == 503 else _database_unavailable(exc)
    return response


def _database_unavailable(exc: Exception):
    """The 503 for a commit the database failed: the session is rolled back (SQLAlchemy has already
    invalidated a dead connection, so the pool hands the next request a fresh one)."""
    db.session.rollback()
    return _replacement(handle_error(exc))


def _replacement(rendered):
    """A response made after the view (the HTML renderer returns a tuple), with the security headers
    that the hooks which already ran did not put on it."""
    return apply_security_headers(current_app.make_response(rendered))


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing (as ValueError, which werkzeug turns into a 400) documents nested deeper
    than MAX_JSON_DEPTH, numbers longer than MAX_JSON_NUMBER_LENGTH and NaN/Infinity, for every
    reader of `request.get_json()`: the API, the OAuth registration endpoint, the rate-limit keys."""

    def loads(self, s, **kwargs):
        return bounded_json.loads(s, **kwargs)


class BoundedRequest(Request):
    """Flask's request; a JSON body the provider refused is a 400 saying why, on every surface."""

    def on_json_loading_failed(self, e: ValueError | None):
        if e is None:  # not application/json: werkzeug's 415
            return super().on_json_loading_failed(e)
        reason = f": {e}" if isinstance(e, UnacceptableJSON) else ""
        raise BadRequest(f"The request body is not valid JSON{reason}.")


class SessionCookieInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session (it carries the CSRF token), its serializer built once per
    secret key instead of on every request. Machine endpoints get none: Flask opens the session
    before it matches the URL, so their paths (`machine_paths`, set by machine_plumbing) are
    recognised here; Flask's null session is never saved, so no Set-Cookie and no `Vary: Cookie`."""

    def __init__(self):
        self._serializer: tuple[tuple, object] | None = None
        self.machine_paths: frozenset[str] = frozenset()
        self.machine_path_prefixes: tuple[str, ...] = ()

    def open_session(self, app: Flask, request: Request):
        path = request.path
        if path in self.machine_paths or (self.machine_path_prefixes and path.startswith(self.machine_path_prefixes)):
            return None
        return super().open_session(app, request)

    def get_signing_serializer(self, app: Flask):
        identity = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        if self._serializer is None or self._serializer[0] != identity:
            self._serializer = (identity, super().get_signing_serializer(app))
        return self._serializer[1]


def setup_requests(app: Flask) -> None:
    app.json = BoundedJSONProvider(app)
    app.request_class = BoundedRequest
    app.session_interface = SessionCookieInterface()
    if not event.contains(OrmSession, "after_begin", _mark_began):
        event.listen(OrmSession, "after_begin", _mark_began)
    app.before_request(assign_request_id)
    # after_request hooks run in reverse: the id is echoed after the commit, on whatever it returns.
    app.after_request(echo_request_id)
    app.after_request(finish_transaction)
