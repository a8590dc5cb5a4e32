"""Sign in (/login) and sign out (/logout)."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for

from idp.errors import InvalidCredentials
from idp.extensions import limiter
from idp.federation.single_logout import start_upstream_logout
from idp.security.headers import allow_frames
from idp.services import browser_sessions, upstreams
from idp.services.password_sign_in import SignInLocked, sign_in_with_password
from idp.services.session_end import SessionEnd, frontchannel_logout_uris
from idp.web.blueprint import bp
from idp.web.forms import PASSWORD_REQUIRED, ActionForm, LoginForm
from idp.services.authorization_requests import find_pending
from idp.web.redirects import safe_next
from idp.web.upstreams import hinted_upstream, login_url, upstream_buttons

GENERIC_FAILURE = "The email address or password is incorrect."


def after_sign_in_url(pending, next_path: str | None) -> str:
    """Back to the authorization request, else a same-origin path, else the account page."""
    if pending is not None:
        return url_for("oidc.resume", request_id=pending.id)
    return safe_next(next_path) or url_for("web.account")


def _render_login(form: LoginForm, pending, error: str | None = None, status: int = 200, headers=None):
    page = render_template("web/login.html", form=form, client=pending.client if pending else None,
                           error=error, upstreams=upstream_buttons(pending.id if pending else None))
    return page, status, headers or {}


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN_IP"], methods=["POST"])
def login():
    form = LoginForm()
    pending = find_pending(form.request.data or request.args.get("request"))
    next_path = safe_next(form.next.data or request.args.get("next"))
    if request.method == "GET":
        if browser_sessions.current_browser_session() is not None and pending is None:
            return redirect(after_sign_in_url(None, next_path))
        hinted = hinted_upstream(pending)
        if hinted is not None:
            return redirect(login_url(hinted, pending.id))
        form.request.data = pending.id if pending else ""
        form.next.data = next_path or ""
        form.email.data = form.email.data or (pending.login_hint if pending else None)
        return _render_login(form, pending)
    valid = form.validate()
    realm = upstreams.upstream_for_email(form.email.data) if valid else None
    if realm is not None and (realm.enforce_for_domains or not form.password.data):
        # Home-realm discovery: this address's domain signs in at its upstream.
        return redirect(login_url(realm, pending.id if pending else None))
    if not form.password.data:
        form.password.errors.append(PASSWORD_REQUIRED)
        valid = False
    if not valid:
        return _render_login(form, pending, status=422)
    try:
        sign_in_with_password(form.email.data, form.password.data)
    except SignInLocked as exc:
        return _render_login(form, pending, exc.message, 429, exc.headers)
    except InvalidCredentials:
        return _render_login(form, pending, GENERIC_FAILURE, 401)
    return redirect(after_sign_in_url(pending, next_path))


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    form = ActionForm()
    if request.method == "GET":
        return render_template("web/logout.html", form=form,
                               signed_in=browser_sessions.current_browser_session() is not None)
    return signed_out(browser_sessions.sign_out(channel="web"))


def signed_out(ended: SessionEnd):
    """After this browser signed out: the signed-out page with a Front-Channel Logout 1.0 (section 4)
    iframe per relying party that asked for one, its CSP framing exactly those; else to sign-in. A
    session from a SAML upstream with single logout goes by the IdP next (SAML Profiles 4.4.3.1,
    idp.federation.single_logout), after the iframes; its answer ends on the sign-in page."""
    frames = frontchannel_logout_uris(ended)
    upstream_url = start_upstream_logout(ended, channel="web")
    if not frames:
        if upstream_url:
            return redirect(upstream_url)
        flash("You have been signed out.", "success")
        return redirect(url_for("web.login"))
    allow_frames(frames)
    return render_template("web/logout.html", form=ActionForm(), signed_in=False, frames=frames, next_url=upstream_url)
