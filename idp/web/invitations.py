"""The invitation page (/invitations?token=...): see the organization and role, sign in or register, join.

The invitation is for an address, not for whoever holds the link: only an account with that address
joins. Signed in with another account, the page says so and offers to sign out. Registering from the
invitation creates the account with the invited address already verified, since the link was mailed
there (idp.services.invitations). An unknown, resent, revoked, used or expired link gets one page.
"""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from wtforms import SubmitField

from idp.errors import BadRequest, Conflict, Forbidden, ValidationError
from idp.models import Invitation, User
from idp.services import browser_sessions, invitations
from idp.web.blueprint import bp
from idp.web.errors_on_forms import show_on_form
from idp.web.form_limits import register_limited
from idp.web.forms import ActionForm, RegisterForm


class InvitationRegisterForm(RegisterForm):
    """Registration for the invited address, which the form does not ask for."""

    email = None  # (WTForms: a subclass drops a field by setting it to None)
    submit = SubmitField("Create account and join")


def _invalid_page():
    return render_template("web/invitation_invalid.html", message=invitations.INVALID_INVITATION), 400


def _invitation_page(invitation: Invitation, token: str, user: User | None, status: int = 200):
    state = "anonymous" if user is None else ("join" if invitations.is_for(invitation, user) else "wrong_account")
    return render_template("web/invitation.html", invitation=invitation, token=token, user=user, state=state,
                           form=ActionForm(), registration=current_app.config["REGISTRATION_ENABLED"]), status


def _token() -> str:
    # In the query string, like the reset and verification links: access logs leave query strings out.
    return request.args.get("token", "")


@bp.route("/invitations", methods=["GET"])
def invitation():
    token = _token()
    try:
        found = invitations.find_open(token)
    except BadRequest:
        return _invalid_page()
    return _invitation_page(found, token, browser_sessions.current_browser_user())


@bp.route("/invitations", methods=["POST"])
def join_organization():
    token = _token()
    user = browser_sessions.current_browser_user()
    if user is None:
        return redirect(url_for("web.login", next=url_for("web.invitation", token=token)))
    try:
        found, membership = invitations.accept(token, user)
    except BadRequest:
        return _invalid_page()
    except Forbidden:
        return _invitation_page(invitations.find_open(token), token, user, status=403)
    _flash_joined(found, already_member=membership is None)
    return redirect(url_for("web.account"))


@bp.route("/invitations/register", methods=["GET", "POST"])
@register_limited
def register_from_invitation():
    token = _token()
    try:
        found = invitations.find_open(token)
    except BadRequest:
        return _invalid_page()
    if not current_app.config["REGISTRATION_ENABLED"]:
        abort(404)
    form = InvitationRegisterForm()
    if not form.is_submitted():
        return _register_page(form, found, token)
    if not form.validate():
        return _register_page(form, found, token, status=422)
    try:
        user, joined = invitations.register_and_accept(token, form.name.data, form.password.data)
    except Conflict:
        return _register_page(form, found, token, status=409, error="An account with this address already "
                              "exists: sign in with it to join, or reset its password if you forgot it.")
    except ValidationError as exc:
        return _register_page(form, found, token, status=422, error=show_on_form(form, exc))
    except BadRequest:
        return _invalid_page()
    browser_sessions.sign_in(user, amr=["pwd"])
    _flash_joined(joined, already_member=False)
    return redirect(url_for("web.account"))


def _register_page(form: InvitationRegisterForm, found: Invitation, token: str, status: int = 200,
                   error: str | None = None):
    return render_template("web/invitation_register.html", form=form, invitation=found, token=token,
                           error=error), status


def _flash_joined(found: Invitation, *, already_member: bool) -> None:
    name = found.organization.name
    if already_member:
        flash(f"You were already a member of {name}; your role there is unchanged.", "info")
    else:
        flash(f"You joined {name} as {found.role}.", "success")
