"""The account emails of the hosted pages: verify an address, reset a password, already registered.

Links are built from ISSUER, never from the request's Host header, so a forged Host cannot make
Authy2 mail a link to someone else's server.

Mail that exists only for some addresses (a reset link, "you already have an account", a new
account's link) is sent `after_response`: rendered during the request, handed to SMTP only once the
response has gone out (WSGI `close()`, which gunicorn and werkzeug call after the last byte), so
the time to answer does not tell whether an account exists. It is sent only when the request
committed (a 2xx/3xx response), since it may carry a token stored by that commit.

Every account mail counts against RATELIMIT_MAIL_RECIPIENT for its recipient (a hash of the address,
in the shared expiring counters, which hold even when the request rolls back). Over the limit the
mail is held back silently and the sender is told it went, so no page or API answer changes: a flood
of requests from any number of addresses cannot bomb one mailbox, nor tell whether an account exists.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from flask import after_this_request, current_app, has_request_context, render_template, url_for
from limits import RateLimitItem, parse_many

from idp.models import TokenPurpose, User
from idp.security.ratelimits import mail_recipient_key, mail_recipient_limit
from idp.services.account_tokens import LIFETIMES
from idp.services.cache import get_counters
from idp.services.mail import MailDeliveryError, send_mail


def issuer_url(endpoint: str, **values) -> str:
    """An absolute link to one of our pages, rooted at ISSUER."""
    return current_app.config["ISSUER"] + url_for(endpoint, **values)


def _recipient_limits(user: User) -> list[tuple[RateLimitItem, str]]:
    return [(item, item.key_for(mail_recipient_key(user.email))) for item in parse_many(mail_recipient_limit())]


def recipient_can_receive(user: User) -> bool:
    """Whether `user`'s address is still under RATELIMIT_MAIL_RECIPIENT (counts nothing).

    Ask before issuing the token a mail would carry: a fresh token voids the earlier link, so a held-back
    mail must not cost the user the link they already have.
    """
    counters = get_counters()
    if all(counters.get(key) < item.amount for item, key in _recipient_limits(user)):
        return True
    current_app.logger.info("account mail to user %s held back: over RATELIMIT_MAIL_RECIPIENT", user.id)
    return False


def _count_recipient(user: User, template: str) -> bool:
    """Count one mail to `user`'s address; False (logged without the address) when over the limit."""
    counters = get_counters()
    counts = [(counters.incr(key, item.get_expiry()), item.amount) for item, key in _recipient_limits(user)]
    if all(count <= amount for count, amount in counts):
        return True
    current_app.logger.info("account mail %r to user %s held back: over RATELIMIT_MAIL_RECIPIENT", template, user.id)
    return False


def _send(user: User, template: str, subject: str, *, after_response: bool = False, **context) -> bool:
    """Render and send one account mail; False when it could not be delivered (or queued, with `after_response`).

    A mail held back by the recipient limit reports True, as if sent: callers answer the same either way.
    """
    if not _count_recipient(user, template):
        return True
    context.update(user=user, brand=current_app.config["BRAND_NAME"])
    text = render_template(f"web/mail/{template}.txt", **context)
    html = render_template(f"web/mail/{template}.html", **context)
    address, user_id = user.email, user.id

    def deliver() -> bool:
        try:
            send_mail(address, subject, text, html=html)
        except MailDeliveryError:
            # The page answers the same either way; the user can ask again (resend, forgot password).
            current_app.logger.warning("account mail %r to user %s could not be delivered", template, user_id)
            return False
        return True

    if after_response and has_request_context():
        _deliver_after_response(deliver)
        return True
    return deliver()


def _deliver_after_response(deliver: Callable[[], bool]) -> None:
    app = current_app._get_current_object()

    def run() -> None:
        with app.app_context():
            try:
                deliver()
            except Exception:  # noqa: BLE001 - a close() callback must never raise into the server
                app.logger.exception("account mail failed after the response was sent")

    def attach(response):
        if response.status_code < 400:
            response.call_on_close(run)
        return response

    after_this_request(attach)


def lifetime_text(lifetime: int | timedelta) -> str:
    """A link's lifetime (seconds or a timedelta) for people: "7 days", "12 hours", "30 minutes"."""
    seconds = int(lifetime.total_seconds()) if isinstance(lifetime, timedelta) else lifetime
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def send_verification_mail(user: User, token: str, *, after_response: bool = False) -> bool:
    """Mail the single-use link that confirms `user` owns their address."""
    brand = current_app.config["BRAND_NAME"]
    return _send(user, "verify_email", f"Confirm your email address for {brand}", after_response=after_response,
                 link=issuer_url("web.verify_email", token=token),
                 lifetime=lifetime_text(LIFETIMES[TokenPurpose.VERIFY_EMAIL]))


def send_already_registered_mail(user: User) -> bool:
    """Tell an existing account's owner, after the response, that someone tried to register their address."""
    brand = current_app.config["BRAND_NAME"]
    return _send(user, "already_registered", f"You already have a {brand} account", after_response=True,
                 login_link=issuer_url("web.login"), reset_link=issuer_url("web.forgot_password"))


def send_reset_mail(user: User, token: str) -> bool:
    """Mail the single-use password reset link, after the response."""
    brand = current_app.config["BRAND_NAME"]
    return _send(user, "reset_password", f"Reset your {brand} password", after_response=True,
                 link=issuer_url("web.reset_password", token=token),
                 lifetime=lifetime_text(LIFETIMES[TokenPurpose.RESET_PASSWORD]))


def send_link_confirmation_mail(user: User, token: str, *, provider: str, lifetime: timedelta) -> bool:
    """Mail the single-use link, usable for `lifetime`, that adds `provider` as a way to sign in to
    `user`'s account (it works only in the browser that signed in with the provider), after the response."""
    brand = current_app.config["BRAND_NAME"]
    return _send(user, "link_account", f"Add {provider} as a way to sign in to {brand}", after_response=True,
                 provider=provider, link=issuer_url("web.confirm_link_by_mail", token=token),
                 lifetime=lifetime_text(lifetime))


def send_account_invitation_mail(user: User, token: str) -> bool:
    """Mail the single-use link where someone a platform admin made an account for chooses its first
    password (which also verifies the address), after the response."""
    brand = current_app.config["BRAND_NAME"]
    return _send(user, "account_invitation", f"Your {brand} account is ready: choose a password",
                 after_response=True, link=issuer_url("web.set_password", token=token),
                 login_link=issuer_url("web.login"), lifetime=lifetime_text(LIFETIMES[TokenPurpose.SET_PASSWORD]))


@dataclass(frozen=True)
class Invitee:
    """The addressee of an invitation, who may have no account yet: what `_send` reads of a user (the
    invitation's id stands in for a user id in the log, never the address)."""

    email: str
    id: str


def send_invitation_mail(invitee: Invitee, token: str, *, organization: str, role: str, inviter: str | None,
                         lifetime: str) -> bool:
    """Mail the single-use link, usable for `lifetime` ("7 days"), that lets `invitee` join `organization` as
    `role`, after the response (so a rolled-back invitation never mails a dead link)."""
    brand = current_app.config["BRAND_NAME"]
    return _send(invitee, "invitation", f"You are invited to join {organization} on {brand}", after_response=True,
                 organization=organization, role=role, inviter=inviter, lifetime=lifetime,
                 link=issuer_url("web.invitation", token=token))
