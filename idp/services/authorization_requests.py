"""Pending authorization requests: stored while the user signs in and consents, resumed by id.

The login and consent pages know only the opaque id; `get_pending` gives them what they may show.
Creation is counted per client address (RATELIMIT_AUTHORIZE_PENDING): only requests that must wait for
the user make a row, so a relying party's requests answered at once from an SSO session never count.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from limits import parse_many

from idp.errors import NotFound, RateLimited
from idp.extensions import db
from idp.models import AuthorizationRequest, OAuthClient, utcnow
from idp.security import bounded_json
from idp.security.request_hygiene import has_control_character
from idp.security.secrets import new_token
from idp.services import expiry
from idp.services.cache import get_counters


@dataclass
class PendingAuthorization:
    """What the hosted pages may know about a pending request."""

    id: str
    client: OAuthClient
    scopes: list[str]
    claims: dict | None
    login_hint: str | None
    prompt: set[str]
    ui_locales: str | None
    created_at: datetime
    expires_at: datetime
    denied: bool
    params: dict


def _view(row: AuthorizationRequest) -> PendingAuthorization:
    params = row.params
    claims = params.get("claims")
    if isinstance(claims, str):
        try:
            claims = bounded_json.loads(claims)
        except ValueError:
            claims = None
    return PendingAuthorization(
        id=row.id, client=row.client, scopes=params.get("scope", "").split(), claims=claims,
        login_hint=params.get("login_hint"), prompt=set(params.get("prompt", "").split()),
        ui_locales=params.get("ui_locales"), created_at=row.created_at, expires_at=row.expires_at,
        denied=row.denied_at is not None, params=dict(params))


def count_creation(address: str) -> None:
    """Count one pending request for `address`; RateLimited (with Retry-After) past the limit.

    Windows are aligned on the clock and each has its own key, so the wait until the window ends is
    known without reading a key's expiry. RATELIMIT_ENABLED=false turns the limit off (load tests).
    """
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    now, waits = time.time(), []
    for limit in parse_many(current_app.config["RATELIMIT_AUTHORIZE_PENDING"]):
        window = limit.get_expiry()
        start = int(now // window) * window
        if get_counters().incr(f"authorize-pending:{address}:{window}:{start}", window) > limit.amount:
            waits.append(start + window - now)
    if waits:
        raise RateLimited("Too many sign-in requests have come from your network; try again later.",
                          headers={"Retry-After": str(math.ceil(max(waits)))})


def create_pending(client: OAuthClient, params: dict, *, address: str) -> PendingAuthorization:
    """Store validated request parameters under a fresh opaque id, counting it against `address`."""
    count_creation(address)
    now = utcnow()
    lifetime = current_app.config["AUTHORIZATION_REQUEST_LIFETIME"]
    row = AuthorizationRequest(id=new_token(24), oauth_client_id=client.id, client=client, params=dict(params),
                               created_at=now, expires_at=now + timedelta(seconds=lifetime))
    db.session.add(row)
    db.session.flush()
    return _view(row)


def _live_row(request_id: str) -> AuthorizationRequest:
    row = db.session.get(AuthorizationRequest, request_id) if request_id else None
    if row is None or row.completed_at is not None or row.expires_at <= utcnow() or not row.client.is_active:
        raise NotFound("This sign-in request has expired or is unknown. Return to the application and try again.")
    return row


def get_pending(request_id: str) -> PendingAuthorization:
    """The pending request `request_id`; NotFound when unknown, expired or already answered."""
    return _view(_live_row(request_id))


def find_pending(request_id: str | None) -> PendingAuthorization | None:
    """The pending request `request_id`, or None when absent, malformed, unknown, expired or answered
    (for pages that carry the id as an untrusted parameter)."""
    if not request_id or len(request_id) > 100 or has_control_character(request_id):
        return None
    try:
        return get_pending(request_id)
    except NotFound:
        return None


def deny(request_id: str) -> None:
    """The user refused consent: resuming answers access_denied to the relying party."""
    row = _live_row(request_id)
    row.denied_at = utcnow()
    db.session.flush()


def complete(request_id: str) -> None:
    """Close the request once answered, so it cannot be resumed twice."""
    row = _live_row(request_id)
    row.completed_at = utcnow()
    db.session.flush()


def purge_expired(now: datetime | None = None, limit: int | None = None) -> int:
    """Delete at most `limit` (JOB_PURGE_BATCH) pending requests past their expiry (the job runner calls this)."""
    table = AuthorizationRequest.__table__
    return expiry.delete_batch(table, table.c.expires_at < (now or utcnow()), expiry.batch_size(limit))
