"""The account pages: profile and ways to sign in, password, active sessions, connected apps."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from idp.errors import Conflict, NotFound, ValidationError
from idp.models import User
from idp.services import (accounts, browser_sessions, consent, federated_identities, session_end, sessions,
                          upstreams)
from idp.web.blueprint import bp
from idp.web.scope_text import scope_lines
from idp.web.errors_on_forms import show_on_form
from idp.web.forms import ActionForm, ChangePasswordForm, ProfileForm
from idp.web.guards import page_user, signed_in_required
from idp.web.sign_in import signed_out

PROFILE_FORM_FIELDS = ("name", "given_name", "family_name", "locale", "zoneinfo")


@bp.route("/account", methods=["GET", "POST"])
@signed_in_required
def account():
    user = page_user()
    form = ProfileForm(obj=user)
    if request.method == "GET":
        return _profile_page(form, user)
    if not form.validate():
        return _profile_page(form, user, status=422)
    changes = {name: (form[name].data or "").strip() or None for name in PROFILE_FORM_FIELDS}
    changes["name"] = form.name.data
    try:
        accounts.update_profile(user, changes)
    except ValidationError as exc:
        return _profile_page(form, user, error=show_on_form(form, exc), status=422)
    flash("Your profile was saved.", "success")
    return redirect(url_for("web.account"))


def _profile_page(form: ProfileForm, user: User, *, error: str | None = None, methods_error: str | None = None,
                  status: int = 200):
    """The profile page with the ways to sign in: the password, each linked upstream, and the enabled
    platform upstreams not linked yet (each a POSTed link form: linking is never started by a GET)."""
    methods = federated_identities.list_identities(user)
    linked = {method.upstream_slug for method in methods}
    linkable = [upstream for upstream in upstreams.enabled_platform_upstreams() if upstream.slug not in linked]
    page = render_template("web/account/profile.html", form=form, user=user, action_form=ActionForm(), error=error,
                           methods=methods, linkable=linkable, methods_error=methods_error)
    return page, status


@bp.post("/account/sign-in-methods/<identity_id>/unlink")
@signed_in_required
def unlink_sign_in_method(identity_id: str):
    """Unlink one upstream identity; refused on the page (409) when it is the last way to sign in."""
    user = page_user()
    names = {method.id: method.upstream_name for method in federated_identities.list_identities(user)}
    try:
        federated_identities.unlink_identity(user, identity_id)
    except Conflict as exc:
        return _profile_page(ProfileForm(obj=user), user, methods_error=exc.message, status=409)
    flash(f"You can no longer sign in with {names[identity_id]}.", "success")
    return redirect(url_for("web.account"))


@bp.route("/account/password", methods=["GET", "POST"])
@signed_in_required
def change_password():
    form = ChangePasswordForm()
    if request.method == "GET":
        return render_template("web/account/password.html", form=form)
    if not form.validate():
        return render_template("web/account/password.html", form=form), 422
    current = browser_sessions.current_browser_session()
    try:
        ended = accounts.change_password(page_user(), form.current_password.data, form.password.data,
                                         keep_session_id=current.id)
    except ValidationError as exc:
        error = show_on_form(form, exc, {"new_password": "password"})
        return render_template("web/account/password.html", form=form, error=error), 422
    signed_out = f" {ended} other session(s) were signed out." if ended else ""
    flash(f"Your password was changed.{signed_out}", "success")
    return redirect(url_for("web.account"))


@bp.route("/account/sessions")
@signed_in_required
def account_sessions():
    current = browser_sessions.current_browser_session()
    return render_template("web/account/sessions.html", sessions=sessions.list_active(page_user()),
                           current_id=current.id, form=ActionForm())


@bp.route("/account/sessions/<session_id>/revoke", methods=["POST"])
@signed_in_required
def revoke_session(session_id: str):
    current = browser_sessions.current_browser_session()
    ended = session_end.revoke_own_session(page_user(), session_id, channel="web")
    if session_id == current.id:
        browser_sessions.forget_browser_session()
        return signed_out(ended)
    flash("The session was signed out.", "success")
    return redirect(url_for("web.account_sessions"))


@bp.route("/account/apps")
@signed_in_required
def account_apps():
    apps = [(client, scope_lines(scopes), granted_at) for client, scopes, granted_at in consent.list_consents(page_user())]
    return render_template("web/account/apps.html", apps=apps, form=ActionForm())


@bp.route("/account/apps/<client_id>/revoke", methods=["POST"])
@signed_in_required
def revoke_app(client_id: str):
    user = page_user()
    granted = [client for client, _scopes, _at in consent.list_consents(user) if client.client_id == client_id]
    if not granted:
        raise NotFound("This app has no access to your account.")
    consent.revoke_consent(user, granted[0])
    flash(f"{granted[0].name} can no longer access your account.", "success")
    return redirect(url_for("web.account_apps"))
