"""Confirming a link between an upstream identity and an existing account (services.pending_links).

An upstream sign-in whose address belongs to a verified account lands here instead of signing in:
the owner proves control with the account's password, or with a single-use link mailed to the
address. The pages live under /api/v1/auth/external/link so that the browser-binding cookie
(Path=/api/v1/auth/external/) comes with them: both proofs complete only in the browser that came
back from the upstream.
"""
from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField
from wtforms.validators import DataRequired, Length

from idp.errors import BadRequest, InvalidCredentials
from idp.federation.browser_binding import browser_hash
from idp.security.passwords import MAX_LENGTH as PASSWORD_MAX
from idp.services import audit, pending_links
from idp.services.password_sign_in import SignInLocked
from idp.services.provisioning import FederatedSignIn
from idp.services.upstream_logins import FederatedSignInRefused
from idp.web.blueprint import bp
from idp.web.forms import PASSWORD_REQUIRED

PREFIX = "/api/v1/auth/external/link"
WRONG_PASSWORD = "The password is incorrect."


class LinkPasswordForm(FlaskForm):
    link = HiddenField(validators=[DataRequired(), Length(max=36)])
    password = PasswordField("Password", validators=[DataRequired(PASSWORD_REQUIRED), Length(max=PASSWORD_MAX)])


class LinkMailForm(FlaskForm):
    link = HiddenField(validators=[DataRequired(), Length(max=36)])


class MailTokenForm(FlaskForm):
    token = HiddenField(validators=[DataRequired(), Length(max=200)])


def _cannot_link(error, status: int = 400):
    reason = getattr(error, "reason", None) or ("other_browser" if error.message == pending_links.OTHER_BROWSER
                                                 else "link_invalid")
    audit.record_failure("federation.identity_linked", details={"reason": reason})
    page = render_template("web/link_invalid.html", message=error.message, retry_url=url_for("web.login"),
                           retry_label="Back to sign-in")
    return page, getattr(error, "status", status)


def _done(outcome: FederatedSignIn):
    if outcome.authorization_request_id:
        return redirect(url_for("oidc.resume", request_id=outcome.authorization_request_id))
    return redirect(url_for("web.account"))


def _render(link, form: LinkPasswordForm, *, error: str | None = None, status: int = 200, headers=None):
    page = render_template("web/link_account.html", link=link, form=form, mail_form=LinkMailForm(link=link.id),
                           email=link.user.email, provider=link.upstream.display_name,
                           has_password=bool(link.user.password_hash), error=error)
    return page, status, headers or {}


@bp.route(PREFIX, methods=["GET", "POST"])
def link_account():
    """The choice of proofs, and the password proof (the password sign-in's lockout applies)."""
    form = LinkPasswordForm()
    try:
        link = pending_links.get_pending_link(form.link.data or request.args.get("link"), browser_hash())
    except BadRequest as exc:
        return _cannot_link(exc)
    if request.method == "GET":
        form.link.data = link.id
        return _render(link, form)
    if not form.validate():
        return _render(link, form, status=422)
    try:
        return _done(pending_links.confirm_with_password(link, form.password.data))
    except SignInLocked as exc:
        return _render(link, form, error=exc.message, status=429, headers=exc.headers)
    except InvalidCredentials:
        return _render(link, form, error=WRONG_PASSWORD, status=401)
    except (BadRequest, FederatedSignInRefused) as exc:
        return _cannot_link(exc)


@bp.post(PREFIX + "/mail")
def mail_link_confirmation():
    """Mail the account's address a single-use link that completes the link in this browser."""
    form = LinkMailForm()
    try:
        link = pending_links.get_pending_link(form.link.data if form.validate() else None, browser_hash())
    except BadRequest as exc:
        return _cannot_link(exc)
    pending_links.send_confirmation_mail(link)
    return render_template("web/link_account.html", link=link, sent=True, email=link.user.email,
                           provider=link.upstream.display_name)


@bp.route(PREFIX + "/confirm", methods=["GET", "POST"])
def confirm_link_by_mail():
    """The mailed link: a page with one button (a mail scanner's GET links nothing), then the link."""
    form = MailTokenForm()
    token = form.token.data or request.args.get("token")
    try:
        link = pending_links.link_for_mail_token(token, browser_hash())
        if request.method == "GET" or not form.validate():
            form.token.data = token
            return render_template("web/link_account.html", link=link, confirm_form=form, email=link.user.email,
                                   provider=link.upstream.display_name)
        return _done(pending_links.confirm_with_mail_token(form.token.data, browser_hash()))
    except (BadRequest, FederatedSignInRefused) as exc:
        return _cannot_link(exc)
