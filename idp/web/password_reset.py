"""Forgotten password (/forgot-password), the emailed reset link (/reset-password), and the invitation
link of an account a platform admin created (/set-password)."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from idp.errors import BadRequest, ValidationError
from idp.models import TokenPurpose
from idp.services import password_reset
from idp.web.blueprint import bp
from idp.web.errors_on_forms import show_on_form
from idp.web.form_limits import account_mail_limited
from idp.web.forms import ForgotPasswordForm, NewPasswordForm


def _invalid_link(message: str):
    return render_template("web/link_invalid.html", message=message, retry_url=url_for("web.forgot_password"),
                           retry_label="Ask for a new link"), 400


@bp.route("/forgot-password", methods=["GET", "POST"])
@account_mail_limited
def forgot_password():
    form = ForgotPasswordForm()
    if request.method == "GET":
        return render_template("web/forgot_password.html", form=form)
    if not form.validate():
        return render_template("web/forgot_password.html", form=form), 422
    password_reset.request_reset(form.email.data)
    return render_template("web/check_email.html", email=form.email.data.strip(), purpose="reset")


@bp.route("/reset-password", methods=["GET", "POST"])
def reset_password():
    return _new_password_page(TokenPurpose.RESET_PASSWORD, "web/reset_password.html",
                              "Your password has been changed and you were signed out everywhere. "
                              "Sign in with your new password.")


@bp.route("/set-password", methods=["GET", "POST"])
def set_password():
    """The invitation link of an account a platform admin created: its first password."""
    return _new_password_page(TokenPurpose.SET_PASSWORD, "web/set_password.html",
                              "Your password is set and your email address confirmed. Sign in with your password.")


def _new_password_page(purpose: TokenPurpose, template: str, done: str):
    form = NewPasswordForm()
    if request.method == "GET":
        form.token.data = request.args.get("token", "")
    try:
        user = password_reset.check_reset_link(form.token.data, purpose)
    except BadRequest as exc:
        return _invalid_link(exc.message)
    if request.method == "GET":
        return render_template(template, form=form, email=user.email)
    if not form.validate():
        return render_template(template, form=form, email=user.email), 422
    try:
        password_reset.reset_password(form.token.data, form.password.data, purpose)
    except ValidationError as exc:
        error = show_on_form(form, exc)
        return render_template(template, form=form, email=user.email, error=error), 422
    except BadRequest as exc:
        return _invalid_link(exc.message)
    flash(done, "success")
    return redirect(url_for("web.login"))
