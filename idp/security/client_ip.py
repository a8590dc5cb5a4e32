"""The client's address, trusting X-Forwarded-For only through configured proxies."""
from __future__ import annotations

from flask import current_app, request


def client_ip() -> str:
    """The address of the client, as seen by the last trusted proxy.

    With TRUSTED_PROXY_COUNT = 0 the socket peer is the client; a forged X-Forwarded-For header is
    ignored. With N trusted proxies the Nth address from the right of X-Forwarded-For is taken.
    """
    count = current_app.config.get("TRUSTED_PROXY_COUNT", 0)
    peer = request.remote_addr or "unknown"
    if count <= 0:
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    if len(hops) < count:
        return peer
    return hops[-count]
