"""The federation endpoints: send the browser upstream, take its answer back, SAML metadata and SLO.

/api/v1/auth/external/<slug>/login     GET (sign in) or POST (intent=link, a CSRF-checked form)
/api/v1/auth/external/<slug>/callback  GET, and POST for response_mode=form_post (OAuth 2.0 / OIDC)
/api/v1/auth/external/<slug>/acs       POST (SAML HTTP-POST binding)
/api/v1/auth/external/<slug>/metadata  GET (SAML SP metadata)
/api/v1/auth/external/<slug>/slo       GET/POST (SAML Single Logout)

Every refusal is an HTML page (400, 403 for a disabled account, 404 for an unknown or disabled
upstream), an audit failure with its reason and no session: never a 5xx, never a stack trace.
"""
from __future__ import annotations

from collections.abc import Mapping

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for

from idp.errors import NotFound
from idp.extensions import csrf, db
from idp.federation.browser_binding import bind_browser, browser_hash
from idp.federation.connector import FederationRefused
from idp.federation.connectors import open_connector
from idp.federation.http import UpstreamHttpError
from idp.federation.single_logout import finish_upstream_logout
from idp.models import Upstream
from idp.request_id import current_request_id
from idp.security.request_hygiene import forbid_caching
from idp.security.secrets import new_token
from idp.services import audit, authorization_requests, federated_sign_in, replay, upstream_logins, upstreams
from idp.services.browser_sessions import current_browser_session
from idp.services.provisioning import FederatedSignIn
from idp.services.upstream_logins import FederatedSignInRefused, StartedLogin

bp = Blueprint("federation", __name__, url_prefix="/api/v1/auth/external")
bp.after_request(forbid_caching)

UNAVAILABLE = "The sign-in provider could not be reached or answered something unexpected. Try again later."
NO_PROVIDER = "This sign-in provider does not exist or is turned off."


def _upstream(slug: str) -> Upstream:
    """The enabled upstream `slug`, re-read on every request (disabled mid-flow signs nobody in)."""
    upstream = upstreams.find_enabled(slug)
    if upstream is None:
        raise FederatedSignInRefused("upstream_unavailable", NO_PROVIDER, 404)
    return upstream


def _call_connector(action):
    """Run a connector step; anything but its FederationRefused is an unusable upstream answer."""
    try:
        return action()
    except (FederationRefused, FederatedSignInRefused):
        raise
    except UpstreamHttpError as exc:
        raise FederatedSignInRefused("upstream_unreachable", UNAVAILABLE, detail=str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - untrusted upstream input must never become a 500
        current_app.logger.exception("connector failed (request_id=%s)", current_request_id())
        raise FederatedSignInRefused("connector_error", UNAVAILABLE, detail=type(exc).__name__) from None


@bp.route("/<slug>/login", methods=["GET", "POST"])
def login(slug: str):
    """Start an upstream sign-in: a fresh `state` bound to this browser, then 302 to the upstream.

    Linking (intent=link) changes the signed-in account, so it starts only from a POSTed form with
    its CSRF token: a cross-site GET must not make a victim's browser link whatever account it holds
    at the upstream. A plain sign-in start is a GET: starting one for someone changes nothing for them
    until they finish it at the upstream, and the finish is bound to this browser's cookie.
    """
    try:
        return _start(_upstream(slug))
    except (FederationRefused, FederatedSignInRefused) as refusal:
        return _refusal(slug, refusal, "federation.login")


def _start(upstream: Upstream):
    purpose, user = "sign_in", None
    if request.values.get("intent") == "link":
        session = current_browser_session()
        if request.method != "POST" or session is None:
            raise FederatedSignInRefused("link_not_signed_in", "Sign in to your account, then add the sign-in "
                                         "method from your account page.")
        purpose, user = "link", session.user
    pending = authorization_requests.find_pending(request.values.get("request")) if purpose == "sign_in" else None
    state = new_token()
    start = _call_connector(lambda: open_connector(upstream).begin(
        state, login_hint=pending.login_hint if pending else None))
    upstream_logins.start_login(upstream, state=state, browser_hash=bind_browser(), saved=start.saved,
                                authorization_request_id=pending.id if pending else None, purpose=purpose,
                                user=user)
    return redirect(start.url, 302)


@bp.route("/<slug>/callback", methods=["GET", "POST"])
@csrf.exempt
def callback(slug: str):
    """The OAuth 2.0 / OIDC redirect URI (RFC 6749 4.1.2; POST for OAuth 2.0 Form Post Response Mode)."""
    params = request.form if request.method == "POST" else request.args
    return _finish(slug, params, "state")


@bp.post("/<slug>/acs")
@csrf.exempt
def acs(slug: str):
    """The SAML Assertion Consumer Service (SAML 2.0 Bindings 3.5, HTTP-POST)."""
    return _finish(slug, request.form, "RelayState")


def _finish(slug: str, params: Mapping[str, str], state_param: str):
    try:
        upstream = _upstream(slug)
        started = _consume(upstream, params.get(state_param), saml=state_param == "RelayState")
        saved = started.saved if started is not None else None
        connector = _call_connector(lambda: open_connector(upstream))
        try:
            identity = _call_connector(lambda: connector.complete(params, saved))
        finally:
            _keep_updated_settings(upstream, connector)
        if identity.replay_key and not replay.use_once(upstream.id, identity.replay_key, identity.replay_until):
            raise FederatedSignInRefused("replay", "This sign-in answer was already used. " + upstream_logins.RESTART)
        outcome = federated_sign_in.sign_in_identity(
            upstream, identity, browser_hash=bind_browser(), purpose=started.purpose if started else "sign_in",
            link_user_id=started.user_id if started else None,
            authorization_request_id=started.authorization_request_id if started else None)
    except (FederationRefused, FederatedSignInRefused) as refusal:
        return _refusal(slug, refusal, "federation.sign_in")
    return _after(upstream, outcome, started)


def _keep_updated_settings(upstream: Upstream, connector) -> None:
    """Store what the connector learnt (SAML: metadata refreshed on a signature failure, a finished
    certificate rollover), committed at once: a refused answer rolls the request back, and a
    refresh it caused must not be fetched again by the next answer."""
    updated = getattr(connector, "updated_settings", None)
    if updated is not None:
        upstream.settings = dict(updated)
        db.session.commit()


def _consume(upstream: Upstream, state: str | None, *, saml: bool) -> StartedLogin | None:
    """The sign-in this answer finishes, spent at once (committed), so a refused answer cannot be
    retried with the same state. SAML without a RelayState this IdP issued is unsolicited: None, and
    the connector refuses it unless the upstream allows IdP-initiated sign-in."""
    try:
        started = upstream_logins.consume_login(state, browser_hash=browser_hash(), upstream=upstream)
    except FederatedSignInRefused as refusal:
        if saml and refusal.reason == "state_unknown":
            return None
        raise
    if started.purpose == "link":
        session = current_browser_session()
        if session is not None and session.user_id != started.user_id:
            raise FederatedSignInRefused("link_session_changed", "You signed in as someone else meanwhile. "
                                         + upstream_logins.RESTART)
    db.session.commit()
    return started


def _after(upstream: Upstream, outcome: FederatedSignIn, started: StartedLogin | None):
    if outcome.pending_link is not None:
        return redirect(url_for("web.link_account", link=outcome.pending_link.id))
    if started is not None and started.purpose == "link":
        flash(f"You can now sign in with {upstream.display_name}.", "success")
        return redirect(url_for("web.account"))
    if outcome.authorization_request_id:
        return redirect(url_for("oidc.resume", request_id=outcome.authorization_request_id))
    return redirect(url_for("web.account"))


@bp.get("/<slug>/metadata")
def metadata(slug: str):
    """The SAML SP metadata (SAML 2.0 Metadata; its URL is our entity ID); 404 for other kinds."""
    upstream = _saml_upstream(slug)
    try:
        xml = _call_connector(lambda: open_connector(upstream).metadata())
    except (FederationRefused, FederatedSignInRefused) as refusal:
        return _refusal(slug, refusal, "federation.metadata")
    return Response(xml, mimetype="application/samlmetadata+xml")


def _saml_upstream(slug: str) -> Upstream:
    upstream = upstreams.find_enabled(slug)
    if upstream is None or upstream.kind != "saml":
        raise NotFound(NO_PROVIDER)
    return upstream


@bp.route("/<slug>/slo", methods=["GET", "POST"])
@csrf.exempt
def slo(slug: str):
    """SAML Single Logout (SAML 2.0 Profiles 4.4): the IdP's signed LogoutRequest ends the sessions of
    the NameID (and SessionIndex) it names, and the browser takes our LogoutResponse back; the IdP's
    LogoutResponse to ours (single_logout.py) continues where our sign-out would have gone. 404 for other kinds."""
    upstream = _saml_upstream(slug)
    params = request.form if request.method == "POST" else request.args
    raw_query = request.query_string.decode("latin-1") if request.method == "GET" else None
    try:
        result = _call_connector(lambda: open_connector(upstream).handle_slo(params, raw_query))
    except (FederationRefused, FederatedSignInRefused) as refusal:
        return _refusal(slug, refusal, "federation.logout")
    if result.kind == "logout_request":
        federated_sign_in.end_upstream_sessions(upstream, result.name_id, result.session_indexes)
        if result.redirect_url:
            return redirect(result.redirect_url)
        return redirect(url_for("web.login"))
    try:
        continuation = finish_upstream_logout(upstream, params.get("RelayState"), result.in_response_to)
    except FederatedSignInRefused as refusal:
        return _refusal(slug, refusal, "federation.logout")
    return _after_logout(upstream, result.success, continuation)


def _after_logout(upstream: Upstream, success: bool, continuation: dict):
    """Where our sign-out would have gone without the IdP (single_logout.py): the relying party's
    registered post_logout_redirect_uri, else the signed-out page of the sign-out that started it."""
    if not success:
        # Partial logout (core 3.7.3.2): the IdP kept sessions elsewhere; ours has ended all the same.
        current_app.logger.info("upstream %r answered the LogoutRequest without success (request_id=%s)",
                                upstream.slug, current_request_id())
    if continuation.get("next"):
        return redirect(continuation["next"])
    if continuation.get("channel") == "oidc":
        return render_template("oidc/logged_out.html", frames=[], next_url=None, refused=continuation.get("refused"))
    flash("You have been signed out.", "success")
    return redirect(url_for("web.login"))


def _refusal(slug: str, refusal, action: str):
    status = getattr(refusal, "status", 400)
    audit.record_failure(action, details={"upstream": slug, "reason": refusal.reason})
    current_app.logger.info("federation refused (request_id=%s): %s %s", current_request_id(), refusal.reason,
                            refusal.detail or "")
    heading = "Single sign-out not completed" if action == "federation.logout" else None
    page = render_template("federation/error.html", code=status, message=refusal.message, heading=heading,
                           request_id=current_request_id())
    return page, status


def render_federation_error(error):
    """Errors under the federation prefix (404, 405, 413 ...) as the hosted error page, not the API envelope."""
    page = render_template("federation/error.html", code=error.code, message=error.message,
                           request_id=current_request_id())
    return page, error.code, error.headers
