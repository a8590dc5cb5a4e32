"""Machine-to-machine endpoints (issue #12): views marked with machine_endpoint run hooks chosen
once at start-up instead of the browser plumbing every page runs.

Flask walks every registered hook on every request; for a token request most of them only decide
that they have nothing to do. plan_machine_plumbing decides that once per endpoint: no cookie
session (requests.SessionCookieInterface skips their paths), exempt from CSRF (csrf.exempt), no page headers
(security.headers.machine_headers instead), the request id assigned lazily when echoed,
Flask-Limiter only where a limit could apply, CORS with its resource's options resolved now.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache, partial

from flask import Flask, request
from flask.globals import request_ctx
from flask.sansio.scaffold import _sentinel
from flask.signals import request_tearing_down
from flask_cors.core import (ACL_ORIGIN, ACL_REQUEST_HEADER_PRIVATE_NETWORK, ACL_REQUEST_HEADERS, ACL_REQUEST_METHOD,
                             FLASK_CORS_EVALUATED, get_cors_headers, try_match_pattern)
from flask_limiter.util import get_qualified_name
from werkzeug.datastructures import Headers

from idp.extensions import csrf, limiter
from idp.request_id import assign_request_id
from idp.requests import SessionCookieInterface
from idp.security.headers import apply_security_headers, machine_headers
from idp.services.browser_sessions import write_browser_cookie

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
        context = request_ctx._get_current_object()  # one context lookup for both uses
        plumbing = self.machine_plumbing.get(context.request.endpoint)
        if plumbing is None:
            return super().process_response(response)
        for hook in context._after_request_functions:  # after_this_request
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
    no cookie session, exempt from CSRF (csrf.exempt, and Flask-WTF's hook, which would only find the
    exemption, is not run), no page headers (security.headers.machine_headers instead),
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
              if hook not in skipped_before and not _is_csrf_check(hook)]
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


def _is_limiter_headers(hook) -> bool:
    return isinstance(hook, partial) and hook.args == (limiter,)


def _is_csrf_check(hook) -> bool:
    """Flask-WTF's before-request hook: for a view csrf.exempt marks it returns without checking."""
    return getattr(hook, "__qualname__", "") == "CSRFProtect.init_app.<locals>.csrf_protect"


def _is_cors(hook) -> bool:
    return getattr(hook, "__qualname__", "") == "make_after_request_function.<locals>.cors_after_request"


def _planned_cors(hook, rule) -> list:
    """Flask-CORS matches the request path against its resources on every response; a route without
    variables has one path, so its resource (or none) is found now. Otherwise the hook stays."""
    if rule.arguments:
        return [hook]
    try:
        cors_headers = resolved_cors_headers(hook, rule.rule)
    except LookupError:
        return [hook]
    if cors_headers is None:
        return []

    def planned_cors(response):
        headers = response.headers
        origin = headers.getlist(ACL_ORIGIN)  # not get(): a missing header raises and catches an exception
        if (origin and origin[0]) or hasattr(response, FLASK_CORS_EVALUATED):
            return response
        current = request._get_current_object()
        for name, value in cors_headers(current.method, *map(current.environ.get, CORS_ENVIRON_KEYS)):
            headers.add(name, value)
        return response

    return [planned_cors]


def resolved_cors_headers(hook, path: str):
    """Flask-CORS's answer for one fixed path, resolved now from its after-request `hook`: a function
    of the method and the CORS request headers' environ values (CORS_ENVIRON_KEYS order) giving the
    header pairs; None when no resource matches the path. LookupError when the hook's layout is not
    the one known here."""
    try:
        cells = dict(zip(hook.__code__.co_freevars, (cell.cell_contents for cell in hook.__closure__)))
        resources = cells["resources"]
    except (KeyError, TypeError, ValueError) as error:
        raise LookupError("unknown Flask-CORS hook layout") from error
    options = next((opts for pattern, opts in resources if try_match_pattern(path, pattern, caseSensitive=True)), None)
    return None if options is None else _memoized_cors_headers(options)


def app_cors_headers(app: Flask, path: str):
    """resolved_cors_headers for the app's Flask-CORS hook (None without one or without a resource
    for the path); LookupError as there."""
    hook = next((hook for hook in app.after_request_funcs.get(None, ()) if _is_cors(hook)), None)
    return None if hook is None else resolved_cors_headers(hook, path)


# The request headers Flask-CORS's answer depends on (besides the method).
CORS_REQUEST_HEADERS = ("Origin", ACL_REQUEST_HEADER_PRIVATE_NETWORK, ACL_REQUEST_METHOD, ACL_REQUEST_HEADERS)
CORS_ENVIRON_KEYS = tuple("HTTP_" + name.upper().replace("-", "_") for name in CORS_REQUEST_HEADERS)  # (PEP 3333)


def _memoized_cors_headers(options):
    """Flask-CORS's own answer (get_cors_headers) for one resource, remembered per distinct method and
    CORS request headers (bounded: Origin is the client's to choose)."""
    @lru_cache(maxsize=256)
    def cors_headers(method: str, *values: str | None) -> tuple:
        present = Headers([(name, value) for name, value in zip(CORS_REQUEST_HEADERS, values) if value is not None])
        return tuple(get_cors_headers(options, present, method).items())

    return cors_headers
