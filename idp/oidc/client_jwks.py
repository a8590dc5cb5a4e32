"""Fetching a client's jwks_uri: https only, never an internal address, cached briefly per process.

The IdP fetches a URL a client registered, so the fetch must not become a way to reach internal
services (server-side request forgery). In production the URI must be https and resolve only to
public addresses, and the fetch connects to the address that was checked (pinned), so a DNS answer
that changes after the check (DNS rebinding) cannot redirect it; TLS still verifies the certificate
against the hostname, which is also sent as SNI and as the Host header. ALLOW_PRIVATE_JWKS_URI lifts
all of this (a plain request) for development and tests on loopback.
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
from requests.adapters import HTTPAdapter
from urllib3.util import parse_url

FETCH_TIMEOUT = 5
MAX_BYTES = 64 * 1024
JWKS_CACHE_SECONDS = 300

_cache: dict[str, tuple[float, dict]] = {}
_lock = threading.Lock()


class JwksFetchError(Exception):
    """The key set could not be fetched; the message is for the operator's log."""


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to one already-checked address; SNI, the certificate check and Host use the URI's hostname.

    Proxies are ignored: a proxy would resolve the hostname again.
    """

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        hostname = host_params["host"]
        pool_kwargs.update(server_hostname=hostname, assert_hostname=hostname)
        return self.poolmanager.connection_from_host(
            self.address, host_params["port"], host_params["scheme"], pool_kwargs=pool_kwargs)

    def add_headers(self, request, **kwargs):
        request.headers["Host"] = parse_url(request.url).netloc


def check_jwks_uri(uri: str) -> list[str]:
    """Refuse a URI the IdP must not fetch (scheme, or an address inside the network).

    Returns the resolved addresses it approved, all public; empty when ALLOW_PRIVATE_JWKS_URI is on
    (nothing checked, nothing to pin).
    """
    parts = urlsplit(uri)
    allow_private = current_app.config["ALLOW_PRIVATE_JWKS_URI"]
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise JwksFetchError(f"jwks_uri scheme {parts.scheme!r} is not allowed")
    if not parts.hostname:
        raise JwksFetchError("jwks_uri has no host")
    if allow_private:
        return []
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as error:
        raise JwksFetchError(f"jwks_uri host does not resolve: {error}") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise JwksFetchError(f"jwks_uri resolves to a non-public address {address}")
        addresses.append(str(address))
    if not addresses:
        raise JwksFetchError("jwks_uri host resolves to no address")
    return addresses


def _read_body(uri: str, addresses: list[str]) -> bytes:
    """GET without redirects, at most MAX_BYTES + 1 bytes of body; pinned to the first checked
    address when there is one (proxies from the environment are not used then)."""
    with requests.Session() as session:
        if addresses:
            session.trust_env = False
            session.mount("https://", PinnedAddressAdapter(addresses[0]))
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
