"""Requests to upstreams: bounded in time and size, never redirected, behind the SSRF guard.

Outside production (ALLOW_PRIVATE_UPSTREAM_URLS) plain http and loopback upstreams are allowed, for
development and the tests' local stand-ins; in production every URL must be https and resolve to
public addresses, and the request is pinned to the address that was checked (idp.security.outbound).
"""
from __future__ import annotations

from idp.security import bounded_json
from idp.security.outbound import OutboundRequestFailed, OutboundURIRefused, check_outbound_uri, guarded_request

MAX_BYTES = 1024 * 1024


class UpstreamHttpError(Exception):
    """The upstream could not be asked or answered something unreadable; the message is for the log."""


class UpstreamHttp:
    """GET and POST to an upstream, answering (status, parsed JSON or text)."""

    def __init__(self, *, allow_private: bool, timeout: float):
        self.allow_private = allow_private
        self.timeout = timeout

    def check(self, url: str, label: str = "upstream URL") -> list[str]:
        """The approved addresses of `url`; UpstreamHttpError when it must not be requested."""
        try:
            return check_outbound_uri(url, allow_private=self.allow_private, label=label)
        except OutboundURIRefused as error:
            raise UpstreamHttpError(str(error)) from None

    def get_json(self, url: str, headers: dict | None = None) -> tuple[int, object]:
        return self._send("GET", url, headers=headers, parse=bounded_json.loads)

    def post_form(self, url: str, data: dict, headers: dict | None = None, auth=None) -> tuple[int, object]:
        return self._send("POST", url, headers=headers, data=data, auth=auth, parse=bounded_json.loads)

    def get_text(self, url: str, headers: dict | None = None) -> tuple[int, str]:
        return self._send("GET", url, headers=headers, parse=lambda body: body.decode("utf-8"))

    def _send(self, method: str, url: str, *, parse, **kwargs) -> tuple[int, object]:
        try:
            status, body = guarded_request(method, url, allow_private=self.allow_private, label="upstream URL",
                                           timeout=self.timeout, max_bytes=MAX_BYTES, **kwargs)
        except OutboundURIRefused as error:
            raise UpstreamHttpError(str(error)) from None
        except OutboundRequestFailed as error:
            raise UpstreamHttpError(f"{method} {url} {error}") from None
        try:
            return status, parse(body)
        except (ValueError, UnicodeDecodeError):
            raise UpstreamHttpError(f"{method} {url} answered HTTP {status} with an unreadable body") from None
