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

import requests
from flask import current_app

from idp.security.outbound import OutboundURIRefused, check_outbound_uri, outbound_session

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


def _read_body(uri: str, addresses: list[str]) -> bytes:
    """GET without redirects, at most MAX_BYTES + 1 bytes of body, pinned to the checked address."""
    with outbound_session(addresses) as session:
        with session.get(uri, timeout=FETCH_TIMEOUT, allow_redirects=False, stream=True) as response:
            response.raise_for_status()
            return response.raw.read(MAX_BYTES + 1, decode_content=True)


def fetch_jwks(uri: str) -> dict:
    """The key set at `uri`, from the cache when fresh."""
    entry = _cache.get(uri)
    if entry is not None and entry[0] > time.time():
        return entry[1]
    addresses = check_jwks_uri(uri)
    try:
        body = _read_body(uri, addresses)
        if len(body) > MAX_BYTES:
            raise JwksFetchError("jwks_uri answered more than 64 KiB")
        jwks = requests.models.complexjson.loads(body)
    except (requests.RequestException, ValueError) as error:
        raise JwksFetchError(f"jwks_uri fetch failed: {type(error).__name__}") from None
    with _lock:
        if len(_cache) > 1000:
            _cache.clear()
        _cache[uri] = (time.time() + JWKS_CACHE_SECONDS, jwks)
    return jwks


def forget_jwks(uri: str) -> None:
    with _lock:
        _cache.pop(uri, None)
