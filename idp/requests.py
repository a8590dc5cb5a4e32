"""Per-request plumbing: the request id hooks, bounded JSON bodies, and one commit or rollback per
request (a lost database connection answers 503, like any other database failure)."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial

from flask import Flask, Request, current_app, request
from flask.globals import request_ctx
from flask.sansio.scaffold import _sentinel
from flask.signals import request_tearing_down
from flask_cors.core import ACL_ORIGIN, set_cors_headers, try_match_pattern
from flask_limiter.util import get_qualified_name
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession
from werkzeug.exceptions import BadRequest

from idp.error_handlers import handle_error, is_database_unavailable, render_error
from idp.errors import Conflict
from idp.extensions import csrf, db, limiter
from idp.request_id import assign_request_id, echo_request_id
from idp.security import bounded_json
from idp.security.bounded_json import UnacceptableJSON
from idp.security.headers import apply_security_headers, machine_headers
from idp.services import audit
from idp.services.browser_sessions import write_browser_cookie

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
    before it matches the URL, so their paths (`machine_paths`, set by plan_machine_plumbing) are
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


MACHINE = "machine_endpoint"  # the view attribute machine_endpoint sets: whether tokens travel


def machine_endpoint(view=None, *, carries_tokens: bool = True):
    """Mark a view as a machine-to-machine endpoint (JSON for programs: token, introspection,
    metadata...): plan_machine_plumbing gives it no browser plumbing. `carries_tokens=False` for
    public documents that choose their own caching (discovery, JWKS, WebFinger)."""
    def mark(function):
        setattr(function, MACHINE, carries_tokens)
        return function
    return mark(view) if view is not None else mark


@dataclass(frozen=True)
class Plumbing:
    """The request hooks one endpoint runs, in running order, chosen at start-up."""
    before: tuple
    after: tuple
    teardown: tuple


class IdentityProviderFlask(Flask):
    """Flask, running each machine endpoint's planned hooks (plan_machine_plumbing) instead of
    walking every registered hook; every other endpoint runs Flask's own processing unchanged."""

    machine_plumbing: dict[str, Plumbing] = {}

    def preprocess_request(self):
        plumbing = self.machine_plumbing.get(request.endpoint)
        if plumbing is None:
            return super().preprocess_request()
        for hook in plumbing.before:
            returned = hook()
            if returned is not None:
                return returned
        return None

    def process_response(self, response):
        plumbing = self.machine_plumbing.get(request.endpoint)
        if plumbing is None:
            return super().process_response(response)
        for hook in request_ctx._after_request_functions:  # after_this_request
            response = self.ensure_sync(hook)(response)
        for hook in plumbing.after:
            response = hook(response)
        return response  # the null session: nothing to save

    def do_teardown_request(self, exc=_sentinel):
        plumbing = self.machine_plumbing.get(request.endpoint)
        if plumbing is None:
            return super().do_teardown_request(exc)
        if exc is _sentinel:
            exc = sys.exc_info()[1]
        for hook in plumbing.teardown:
            hook(exc)
        request_tearing_down.send(self, _async_wrapper=self.ensure_sync, exc=exc)


def plan_machine_plumbing(app: Flask, page_only=()) -> None:
    """Decide once, for every view marked with machine_endpoint, which hooks it runs (issue #12):
    no cookie session, no CSRF check, no page headers (security.headers.machine_headers instead),
    the request id assigned lazily when echoed, Flask-Limiter only where a limit could apply, CORS
    with the options of its resource resolved now. Hooks this plan does not know are kept.
    `page_only`: more hooks that act on HTML pages only. Call after every route is registered."""
    if not isinstance(app, IdentityProviderFlask):
        return
    plans, exact, prefixes = {}, set(), set()
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        carries_tokens = getattr(view, MACHINE, None)
        if carries_tokens is None:
            continue
        csrf.exempt(view)
        plan = _plan(app, rule, view, carries_tokens, frozenset(page_only))
        if plan is None:
            continue
        plans[rule.endpoint] = plan
        if rule.arguments:
            prefixes.add(rule.rule.split("<", 1)[0])
        else:
            exact.add(rule.rule)
    app.machine_plumbing = plans
    if isinstance(app.session_interface, SessionCookieInterface):
        app.session_interface.machine_paths = frozenset(exact)
        app.session_interface.machine_path_prefixes = tuple(sorted(prefixes))


def _plan(app: Flask, rule, view, carries_tokens: bool, page_only: frozenset) -> Plumbing | None:
    blueprints = _blueprints(rule.endpoint)
    if any(name in app.url_value_preprocessors for name in (None, *blueprints)):
        return None  # rare; Flask's own processing handles it
    limited = _limiter_applies(app, rule.endpoint, view)
    skipped_before = {assign_request_id, *([] if limited else [limiter._check_request_limit])}
    before = [hook for name in (None, *reversed(blueprints)) for hook in app.before_request_funcs.get(name, ())
              if hook not in skipped_before and not _is_csrf_protect(hook)]
    headers = machine_headers(https_issuer=app.config["ISSUER"].startswith("https://"), carries_tokens=carries_tokens)
    after = []
    for hook in (hook for name in (*blueprints, None) for hook in reversed(app.after_request_funcs.get(name, ()))):
        if hook is apply_security_headers:
            after.append(headers)
        elif _is_cors(hook):
            after.extend(_planned_cors(hook, rule))
        elif hook in page_only or hook is write_browser_cookie or (not limited and _is_limiter_headers(hook)):
            continue
        else:
            after.append(hook)
    teardown = [hook for name in (*blueprints, None) for hook in reversed(app.teardown_request_funcs.get(name, ()))
                if limited or hook != limiter._Limiter__release_context]
    return Plumbing(*(tuple(app.ensure_sync(h) for h in hooks) for hooks in (before, after, teardown)))


def _blueprints(endpoint: str) -> list[str]:
    """request.blueprints for this endpoint: the blueprint, then its parents."""
    name, found = endpoint.rpartition(".")[0], []
    while name:
        found.append(name)
        name = name.rpartition(".")[0]
    return found


def _limiter_applies(app: Flask, endpoint: str, view) -> bool:
    """Whether any Flask-Limiter limit could apply to the endpoint (application, default, meta or
    fallback limits, or the route's or its blueprint's own). If the extension's layout is not the
    one known here, assume it does."""
    try:
        manager = limiter.limit_manager
        name = get_qualified_name(view)
        return bool(manager._application_limits or manager._default_limits or limiter._meta_limits
                    or limiter._in_memory_fallback or name in manager._decorated_limits
                    or name in limiter._marked_for_limiting or manager.has_hints(endpoint)
                    or any(bp in manager._blueprint_limits for bp in _blueprints(endpoint)))
    except AttributeError:
        return True


def _is_csrf_protect(hook) -> bool:
    return getattr(hook, "__qualname__", "") == "CSRFProtect.init_app.<locals>.csrf_protect"


def _is_limiter_headers(hook) -> bool:
    return isinstance(hook, partial) and hook.args == (limiter,)


def _is_cors(hook) -> bool:
    return getattr(hook, "__qualname__", "") == "make_after_request_function.<locals>.cors_after_request"


def _planned_cors(hook, rule) -> list:
    """Flask-CORS matches the request path against its resources on every response; a route without
    variables has one path, so its resource (or none) is found now. Otherwise the hook stays."""
    if rule.arguments:
        return [hook]
    try:
        cells = dict(zip(hook.__code__.co_freevars, (cell.cell_contents for cell in hook.__closure__)))
        resources = cells["resources"]
    except (KeyError, TypeError, ValueError):
        return [hook]
    options = next((opts for pattern, opts in resources if try_match_pattern(rule.rule, pattern, caseSensitive=True)),
                   None)
    if options is None:
        return []

    def planned_cors(response):
        if not response.headers.get(ACL_ORIGIN):
            set_cors_headers(response, options)
        return response

    return [planned_cors]


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
