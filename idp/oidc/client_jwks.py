"""Fetching a client's jwks_uri: https only, never an internal address, cached briefly per process.

The IdP fetches a URL a client registered, so the fetch must not become a way to reach internal
services (server-side request forgery). In production the URI must be https and resolve only to
public addresses; ALLOW_PRIVATE_JWKS_URI lifts both for development and tests on loopback.
Fetched key sets are kept JWKS_CACHE_SECONDS; a failed signature check drops the entry, so a
client that rotated its keys succeeds on its next attempt.
"""
from __future__ import annotations

import ipaddress
import socket
import threading
import time
from urllib.parse import urlsplit

import requests
from flask import current_app

FETCH_TIMEOUT = 5
MAX_BYTES = 64 * 1024
JWKS_CACHE_SECONDS = 300

_cache: dict[str, tuple[float, dict]] = {}
_lock = threading.Lock()


class JwksFetchError(Exception):
    """The key set could not be fetched; the message is for the operator's log."""


def check_jwks_uri(uri: str) -> None:
    """Refuse a URI the IdP must not fetch (scheme, or an address inside the network)."""
    parts = urlsplit(uri)
    allow_private = current_app.config["ALLOW_PRIVATE_JWKS_URI"]
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise JwksFetchError(f"jwks_uri scheme {parts.scheme!r} is not allowed")
    if not parts.hostname:
        raise JwksFetchError("jwks_uri has no host")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as error:
        raise JwksFetchError(f"jwks_uri host does not resolve: {error}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise JwksFetchError(f"jwks_uri resolves to a non-public address {address}")


def fetch_jwks(uri: str) -> dict:
    """The key set at `uri`, from the cache when fresh."""
    entry = _cache.get(uri)
    if entry is not None and entry[0] > time.time():
        return entry[1]
    check_jwks_uri(uri)
    try:
        response = requests.get(uri, timeout=FETCH_TIMEOUT, allow_redirects=False, stream=True)
        response.raise_for_status()
        body = response.raw.read(MAX_BYTES + 1, decode_content=True)
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
