"""Rate-limit strings and keys for Flask-Limiter, read from the app's config on every request.

Limit strings are callables so each app (and each test app) uses its own RATELIMIT_* values, and
`limits_disabled` honours RATELIMIT_ENABLED per app. Keys never hold an email in clear: the
per-account key is a hash of the normalised address.
"""
from __future__ import annotations

import hashlib
import unicodedata

from flask import current_app, g, request

from idp.security.client_ip import client_ip


def login_ip_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN_IP"]


def login_account_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN_ACCOUNT"]


def register_limit() -> str:
    return current_app.config["RATELIMIT_REGISTER"]


def limits_disabled() -> bool:
    """True when this app runs with RATELIMIT_ENABLED=false."""
    return not current_app.config.get("RATELIMIT_ENABLED", True)


def ip_key() -> str:
    return f"ip:{client_ip()}"


def _email_from_body() -> str:
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    if not isinstance(email, str):
        return ""
    return unicodedata.normalize("NFC", email.strip()).lower()


def login_account_key() -> str:
    """The account a login attempt targets: a hash of the normalised email in the JSON body.

    Bodies without a usable email share one bucket; they are refused by validation anyway.
    """
    digest = hashlib.sha256(_email_from_body().encode("utf-8")).hexdigest()[:40]
    return f"account:{digest}"


def current_user_key() -> str:
    """The authenticated user (after login_required), for limits on password re-checks."""
    user = g.get("user")
    return f"user:{user.id}" if user is not None else ip_key()


# Buckets shared by several routes (Flask-Limiter shared_limit scopes): registering on the hosted page
# and through the API spend one budget per address; so do the forms that mail a link on request.
REGISTER_SCOPE = "register"
ACCOUNT_MAIL_SCOPE = "account-mail"


def account_mail_limit() -> str:
    return current_app.config["RATELIMIT_ACCOUNT_MAIL"]


def mail_recipient_limit() -> str:
    return current_app.config["RATELIMIT_MAIL_RECIPIENT"]


def mail_recipient_key(address: str) -> str:
    """The mailbox an account mail goes to: a hash of the canonical address, never the address."""
    canonical = unicodedata.normalize("NFC", address.strip()).lower()
    return f"mail-recipient:{hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:40]}"
