"""Registration (/register) and email verification (/verify-email)."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from idp.errors import BadRequest, ValidationError
from idp.services import email_verification
from idp.services.browser_sessions import current_browser_session
from idp.web.blueprint import bp
from idp.web.errors_on_forms import show_on_form
from idp.web.form_limits import account_mail_limited, register_limited
from idp.web.forms import RegisterForm
from idp.web.guards import page_user, signed_in_required


def _require_registration() -> None:
    if not current_app.config["REGISTRATION_ENABLED"]:
        abort(404)


@bp.route("/register", methods=["GET", "POST"])
@register_limited
def register():
    _require_registration()
    form = RegisterForm()
    if request.method == "GET":
        return render_template("web/register.html", form=form)
    if not form.validate():
        return render_template("web/register.html", form=form), 422
    try:
        email_verification.start_registration(form.name.data, form.email.data, form.password.data)
    except ValidationError as exc:
        error = show_on_form(form, exc)
        return render_template("web/register.html", form=form, error=error), 422
    return render_template("web/check_email.html", email=form.email.data.strip(), purpose="register")


@bp.route("/verify-email")
def verify_email():
    try:
        email_verification.verify_email(request.args.get("token"))
    except BadRequest as exc:
        return render_template("web/link_invalid.html", message=exc.message,
                               retry_url=url_for("web.account"), retry_label="Go to your account"), 400
    flash("Thank you: your email address is confirmed.", "success")
    signed_in = current_browser_session() is not None
    return redirect(url_for("web.account" if signed_in else "web.login"))


@bp.route("/account/verify-email", methods=["POST"])
@signed_in_required
@account_mail_limited
def resend_verification():
    user = page_user()
    if user.email_verified:
        flash("Your email address is already confirmed.", "info")
    elif email_verification.send_verification(user):
        flash(f"We sent a new confirmation link to {user.email}.", "success")
    else:
        flash("We could not send the email just now. Please try again in a few minutes.", "error")
    return redirect(url_for("web.account"))
