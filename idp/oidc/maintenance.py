"""The OIDC job for `flask run-jobs`: delete expired codes, token records and pending requests."""
from __future__ import annotations

from idp.services import authorization_requests, tokens
from idp.services.expiry import purge_in_batches


def purge_expired_grants() -> str:
    """Delete rows past their expiry, a committed batch at a time; revocation state of live tokens is untouched."""
    count = purge_in_batches(tokens.purge_expired) + purge_in_batches(authorization_requests.purge_expired)
    return f"deleted {count} expired code/token/request row(s)"
