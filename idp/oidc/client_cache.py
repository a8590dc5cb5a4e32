"""A short-lived per-process cache of client rows, so the token hot path issues no client SELECT.

Entries live at most CLIENT_CACHE_SECONDS, and each lookup checks them against the client generation
(idp.services.client_generation), which every client change moves after its commit:
- a change made in this process drops every entry here at once;
- with REDIS_URL, a change made on any worker or node drops them within SHARED_RECHECK_SECONDS (each
  worker reads the shared generation from Redis at most that often);
- without Redis, or while it is down, an entry is served at most UNCHECKED_SECONDS after it was read,
  so other workers see a change within a second (the embedded default is one process anyway).
A row changed in the database by hand, behind the services, is seen after CLIENT_CACHE_SECONDS.

Each request gets its own detached copy of the cached row, built from the row's
column values without a query and without opening the request's ORM session: a client-credentials
token request then never touches the database layer at all. A copy that a new row refers to (a
consent, a revoked token) is attached to that request's session like any detached instance.
"""
from __future__ import annotations

import threading
import time
from copy import copy
from typing import NamedTuple

from flask import current_app, has_request_context, request
from sqlalchemy import inspect
from sqlalchemy.orm.attributes import instance_state

from idp.models import OAuthClient
from idp.services.client_generation import Generation

UNCHECKED_SECONDS = 1.0


class CachedRow(NamedTuple):
    """A client row's column values, the names of its JSON lists and objects, and its identity key."""

    values: dict
    mutable: tuple[str, ...]
    identity_key: tuple


class ClientCache:
    def __init__(self, ttl: float):
        self.ttl = ttl
        # client_id -> (read at, generation when read, the row)
        self._entries: dict[str, tuple[float, Generation, CachedRow]] = {}
        self._lock = threading.Lock()

    def get(self, client_id: str, generation: Generation) -> OAuthClient | None:
        """The cached client, if it was read under `generation` (the one current now) and is young enough."""
        entry = self._entries.get(client_id)
        if entry is None or not self._fresh(entry[0], entry[1], generation):
            return None
        return detached_copy(entry[2])

    def _fresh(self, read_at: float, seen: Generation, now: Generation) -> bool:
        age = time.time() - read_at
        if age >= self.ttl or seen.local != now.local:
            return False
        if now.shared is None:  # no Redis or Redis down: nobody can tell us of other workers' changes
            return age < UNCHECKED_SECONDS
        return seen.shared == now.shared

    def put(self, client: OAuthClient, generation: Generation) -> None:
        """Remember `client` as read under `generation` (taken BEFORE the row was read, so a change
        committed in between makes this entry stale rather than lost)."""
        state = inspect(client)
        if self.ttl <= 0 or not state.persistent:
            return
        values = {attr.key: getattr(client, attr.key) for attr in inspect(OAuthClient).column_attrs}
        mutable = tuple(key for key, value in values.items() if type(value) in (list, dict))
        values.update((key, copy(values[key])) for key in mutable)
        with self._lock:
            self._entries[client.client_id] = (time.time(), generation, CachedRow(values, mutable, state.key))


def detached_copy(row: CachedRow) -> OAuthClient:
    """A detached OAuthClient holding the row's values as its loaded state, its JSON lists and objects
    copied, so a request that edits its copy's redirect URIs, grant types or keys cannot change the
    cached row."""
    client = OAuthClient.__mapper__.class_manager.new_instance()
    # The loaded state lives in the instance __dict__, as the ORM's own row loading sets it.
    loaded = client.__dict__
    loaded.update(row.values)
    for key in row.mutable:
        loaded[key] = copy(row.values[key])
    # All that make_transient_to_detached does to a fresh instance whose every column is loaded (no
    # history to reset, nothing to expire), at a third of its cost: the row's identity key.
    instance_state(client).key = row.identity_key
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
