"""The account pages: profile, password, active sessions, connected apps."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from idp.errors import NotFound, ValidationError
from idp.services import accounts, browser_sessions, consent, session_end, sessions
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
        return render_template("web/account/profile.html", form=form, user=user, action_form=ActionForm())
    if not form.validate():
        return render_template("web/account/profile.html", form=form, user=user, action_form=ActionForm()), 422
    changes = {name: (form[name].data or "").strip() or None for name in PROFILE_FORM_FIELDS}
    changes["name"] = form.name.data
    try:
        accounts.update_profile(user, changes)
    except ValidationError as exc:
        error = show_on_form(form, exc)
        return render_template("web/account/profile.html", form=form, user=user, action_form=ActionForm(),
                               error=error), 422
    flash("Your profile was saved.", "success")
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
