"""Fetching a client's jwks_uri: https only, never an internal address, cached briefly per process.

The IdP fetches a URL a client registered, so the fetch must not become a way to reach internal
services (server-side request forgery): idp.security.outbound checks and pins it (https, public
addresses only, no DNS rebinding). ALLOW_PRIVATE_JWKS_URI lifts the guard (a plain request) for
development and tests on loopback.
Fetched key sets are kept JWKS_CACHE_SECONDS; a failed signature check drops the entry, so a
client that rotated its keys succeeds on its next attempt.
"""
from __future__ import annotations

import threading
import time

from flask import current_app

from idp.security import bounded_json
from idp.security.outbound import OutboundRequestFailed, OutboundURIRefused, check_outbound_uri, guarded_request

FETCH_TIMEOUT = 5
MAX_BYTES = 64 * 1024
JWKS_CACHE_SECONDS = 300

_cache: dict[str, tuple[float, dict]] = {}
_lock = threading.Lock()


class JwksFetchError(Exception):
    """The key set could not be fetched; the message is for the operator's log."""


def check_jwks_uri(uri: str) -> list[str]:
    """Refuse a jwks_uri the IdP must not fetch (idp.security.outbound); the approved addresses."""
    try:
        return check_outbound_uri(uri, allow_private=current_app.config["ALLOW_PRIVATE_JWKS_URI"], label="jwks_uri")
    except OutboundURIRefused as error:
        raise JwksFetchError(str(error)) from None


def fetch_jwks(uri: str) -> dict:
    """The key set at `uri`, from the cache when fresh."""
    entry = _cache.get(uri)
    if entry is not None and entry[0] > time.time():
        return entry[1]
    try:
        status, body = guarded_request("GET", uri, allow_private=current_app.config["ALLOW_PRIVATE_JWKS_URI"],
                                       label="jwks_uri", timeout=FETCH_TIMEOUT, max_bytes=MAX_BYTES)
        if status != 200:
            raise JwksFetchError(f"jwks_uri answered HTTP {status}")
        jwks = bounded_json.loads(body)
    except OutboundURIRefused as error:
        raise JwksFetchError(str(error)) from None
    except OutboundRequestFailed as error:
        raise JwksFetchError(f"jwks_uri fetch {error}") from None
    except ValueError:
        raise JwksFetchError("jwks_uri answered a body that is not JSON") from None
    with _lock:
        if len(_cache) > 1000:
            _cache.clear()
        _cache[uri] = (time.time() + JWKS_CACHE_SECONDS, jwks)
    return jwks


def forget_jwks(uri: str) -> None:
    with _lock:
        _cache.pop(uri, None)
