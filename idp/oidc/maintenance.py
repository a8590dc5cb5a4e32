"""The OIDC job for `flask run-jobs`: delete expired codes, token records and pending requests."""
from __future__ import annotations

from idp.extensions import db
from idp.services import authorization_requests, tokens


def purge_expired_grants() -> str:
    """Delete rows past their expiry; revocation state of live tokens is untouched."""
    count = tokens.purge_expired() + authorization_requests.purge_expired()
    db.session.commit()
    return f"deleted {count} expired code/token/request row(s)"
