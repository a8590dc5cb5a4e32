"""A short-lived per-process cache of client rows, so the token hot path issues no client SELECT.

Entries live CLIENT_CACHE_SECONDS (stated staleness: a client changed on another node is seen here
within that time). Each request gets its own detached copy of the cached row, built from the row's
column values without a query and without opening the request's ORM session: a client-credentials
token request then never touches the database layer at all. A copy that a new row refers to (a
consent, a revoked token) is attached to that request's session like any detached instance.
"""
from __future__ import annotations

import threading
import time

from flask import current_app, has_request_context, request
from sqlalchemy import inspect
from sqlalchemy.orm import make_transient_to_detached

from idp.models import OAuthClient


class ClientCache:
    def __init__(self, ttl: float):
        self.ttl = ttl
        self._entries: dict[str, tuple[float, dict]] = {}  # client_id -> (expiry, column values)
        self._lock = threading.Lock()

    def get(self, client_id: str) -> OAuthClient | None:
        entry = self._entries.get(client_id)
        if entry is None or entry[0] < time.time():
            return None
        return detached_copy(entry[1])

    def put(self, client: OAuthClient) -> None:
        if self.ttl <= 0 or not inspect(client).persistent:
            return
        values = {attr.key: getattr(client, attr.key) for attr in inspect(OAuthClient).column_attrs}
        values = {key: list(value) if type(value) is list else value for key, value in values.items()}
        with self._lock:
            self._entries[client.client_id] = (time.time() + self.ttl, values)

    def forget(self, client_id: str) -> None:
        with self._lock:
            self._entries.pop(client_id, None)
        clients_seen_by_request().pop(client_id, None)


def detached_copy(values: dict) -> OAuthClient:
    """A detached OAuthClient holding `values` as its loaded state (list values copied, so a request
    that edits its copy's redirect URIs or grant types cannot change the cached row)."""
    client = OAuthClient.__mapper__.class_manager.new_instance()
    # The loaded state lives in the instance __dict__, as the ORM's own row loading sets it.
    client.__dict__.update(values)
    for key, value in values.items():
        if type(value) is list:
            client.__dict__[key] = list(value)
    make_transient_to_detached(client)
    return client


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
