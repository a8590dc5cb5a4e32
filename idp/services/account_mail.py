"""The account emails of the hosted pages: verify an address, reset a password, already registered.

Links are built from ISSUER, never from the request's Host header, so a forged Host cannot make
Authy2 mail a link to someone else's server.
"""
from __future__ import annotations

from flask import current_app, render_template, url_for

from idp.models import User
from idp.services.mail import MailDeliveryError, send_mail


def issuer_url(endpoint: str, **values) -> str:
    """An absolute link to one of our pages, rooted at ISSUER."""
    return current_app.config["ISSUER"] + url_for(endpoint, **values)


def _send(user: User, template: str, subject: str, **context) -> bool:
    context.update(user=user, brand=current_app.config["BRAND_NAME"])
    text = render_template(f"web/mail/{template}.txt", **context)
    html = render_template(f"web/mail/{template}.html", **context)
    try:
        send_mail(user.email, subject, text, html=html)
    except MailDeliveryError:
        # The page answers the same either way; the user can ask again (resend, forgot password).
        current_app.logger.warning("account mail %r to user %s could not be delivered", template, user.id)
        return False
    return True


def send_verification_mail(user: User, token: str) -> bool:
    """Mail the single-use link that confirms `user` owns their address."""
    brand = current_app.config["BRAND_NAME"]
    return _send(user, "verify_email", f"Confirm your email address for {brand}",
                 link=issuer_url("web.verify_email", token=token))


def send_already_registered_mail(user: User) -> bool:
    """Tell an existing account's owner that someone tried to register their address again."""
    brand = current_app.config["BRAND_NAME"]
    return _send(user, "already_registered", f"You already have a {brand} account",
                 login_link=issuer_url("web.login"), reset_link=issuer_url("web.forgot_password"))


def send_reset_mail(user: User, token: str) -> bool:
    """Mail the single-use, 30-minute password reset link."""
    brand = current_app.config["BRAND_NAME"]
    return _send(user, "reset_password", f"Reset your {brand} password",
                 link=issuer_url("web.reset_password", token=token))
