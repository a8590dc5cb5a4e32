"""A short-lived per-process cache of client rows, so the token hot path issues no client SELECT.

Entries live CLIENT_CACHE_SECONDS (stated staleness: a client changed on another node is seen here
within that time). A cached row is handed out through `Session.merge(load=False)`, the ORM's way to
reuse loaded state without a query, so each request still gets its own persistent instance.
"""
from __future__ import annotations

import threading
import time

from flask import current_app, has_request_context, request
from sqlalchemy import inspect
from sqlalchemy.orm import make_transient_to_detached

from idp.extensions import db
from idp.models import OAuthClient


class ClientCache:
    def __init__(self, ttl: float):
        self.ttl = ttl
        self._entries: dict[str, tuple[float, OAuthClient]] = {}
        self._lock = threading.Lock()

    def get(self, client_id: str) -> OAuthClient | None:
        entry = self._entries.get(client_id)
        if entry is None or entry[0] < time.time():
            return None
        return db.session.merge(entry[1], load=False)

    def put(self, client: OAuthClient) -> None:
        if self.ttl <= 0 or not inspect(client).persistent:
            return
        snapshot = OAuthClient()
        for attr in inspect(OAuthClient).column_attrs:
            setattr(snapshot, attr.key, getattr(client, attr.key))
        # A detached, fully loaded copy: merge(load=False) needs an instance with an identity key.
        make_transient_to_detached(snapshot)
        with self._lock:
            self._entries[client.client_id] = (time.time() + self.ttl, snapshot)

    def forget(self, client_id: str) -> None:
        with self._lock:
            self._entries.pop(client_id, None)
        clients_seen_by_request().pop(client_id, None)


def clients_seen_by_request() -> dict:
    """The clients this HTTP request already looked up, by client_id (kept on the request object,
    not `g`, which a test's app context can share across requests)."""
    if not has_request_context():
        return {}
    req = request._get_current_object()
    if not hasattr(req, "oidc_clients"):
        req.oidc_clients = {}
    return req.oidc_clients


def client_cache() -> ClientCache:
    return current_app.extensions["oidc"]["client_cache"]
