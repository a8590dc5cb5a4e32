"""Rate-limit strings and keys for Flask-Limiter, read from the app's config on every request.

Limit strings are callables so each app (and each test app) uses its own RATELIMIT_* values, and
`limits_disabled` honours RATELIMIT_ENABLED per app. Keys never hold an email in clear: a key
naming an address is a hash of the normalised address.
"""
from __future__ import annotations

import hashlib
import unicodedata

from flask import current_app, g

from idp.security.client_ip import client_ip


def login_ip_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN_IP"]


def login_account_limit() -> str:
    # Password re-checks of a signed-in user (idp.api.users); the sign-in itself is guarded by
    # idp.services.lockout, which never counts successes.
    return current_app.config["RATELIMIT_LOGIN_ACCOUNT"]


def register_limit() -> str:
    return current_app.config["RATELIMIT_REGISTER"]


def limits_disabled() -> bool:
    """True when this app runs with RATELIMIT_ENABLED=false."""
    return not current_app.config.get("RATELIMIT_ENABLED", True)


def ip_key() -> str:
    return f"ip:{client_ip()}"


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
