"""Requests the IdP makes to URLs that others chose (a client's jwks_uri or logout URI, an upstream's
endpoints): the server-side request forgery guard, and one guarded request (`guarded_request`).

A client's jwks_uri or backchannel_logout_uri is a URL anyone who can register a client chooses, so
fetching it must not become a way to reach internal services. With the guard on (production) the URL
must be https and its host must resolve only to public addresses; the request then connects to the
address that was checked (pinned), so a DNS answer that changes after the check (DNS rebinding)
cannot redirect it. TLS still verifies the certificate against the hostname, which is also sent as
SNI and as the Host header. With the guard off (development and tests on loopback), http and any
address are allowed and the request is a plain one.
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import parse_url


class OutboundURIRefused(Exception):
    """The URL must not be requested; the message (naming the metadata) is for the operator's log."""


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


def check_outbound_uri(uri: str, *, allow_private: bool, label: str) -> list[str]:
    """Refuse a URI the IdP must not request (scheme, or an address inside the network).

    Returns the resolved addresses it approved, all public; empty when `allow_private` (nothing
    checked, nothing to pin). `label` names the metadata in the refusal message.
    """
    parts = urlsplit(uri)
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise OutboundURIRefused(f"{label} scheme {parts.scheme!r} is not allowed")
    if not parts.hostname:
        raise OutboundURIRefused(f"{label} has no host")
    if allow_private:
        return []
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as error:
        raise OutboundURIRefused(f"{label} host does not resolve: {error}") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise OutboundURIRefused(f"{label} resolves to a non-public address {address}")
        addresses.append(str(address))
    if not addresses:
        raise OutboundURIRefused(f"{label} host resolves to no address")
    return addresses


def outbound_session(addresses: list[str]) -> requests.Session:
    """A requests session for one guarded request: pinned to the first checked address when there is
    one (proxies from the environment are not used then), a plain session otherwise."""
    session = requests.Session()
    if addresses:
        session.trust_env = False
        session.mount("https://", PinnedAddressAdapter(addresses[0]))
    return session


class OutboundRequestFailed(Exception):
    """The guarded request could not be made or its answer was too large; the message, for the log,
    reads on from "<method> <what>" ("failed: ReadTimeout", "answered more than 65536 bytes")."""


def guarded_request(method: str, uri: str, *, allow_private: bool, label: str, timeout: float,
                    max_bytes: int = 0, **kwargs) -> tuple[int, bytes]:
    """One request to a URI someone else chose: checked (check_outbound_uri), pinned to the checked
    address, never redirected, its body read up to `max_bytes` (0: not read). Answers (status, body);
    OutboundURIRefused when the URI must not be requested, OutboundRequestFailed when it failed or
    answered more than `max_bytes`."""
    addresses = check_outbound_uri(uri, allow_private=allow_private, label=label)
    try:
        with outbound_session(addresses) as session:
            with session.request(method, uri, timeout=timeout, allow_redirects=False, stream=True,
                                 **kwargs) as response:
                body = response.raw.read(max_bytes + 1, decode_content=True) if max_bytes else b""
                status = response.status_code
    except requests.RequestException as error:
        raise OutboundRequestFailed(f"failed: {type(error).__name__}") from None
    if max_bytes and len(body) > max_bytes:
        raise OutboundRequestFailed(f"answered more than {max_bytes} bytes")
    return status, body
