"""Looking up relying parties by client_id: from the database, or the per-process cache."""
from __future__ import annotations

from sqlalchemy import select

from idp.extensions import db
from idp.models import OAuthClient
from idp.oidc.client_cache import client_cache, clients_seen_by_request
from idp.services.client_generation import current_generation


def load_client(client_id: str | None) -> OAuthClient | None:
    """The active client with this client_id, read from the database, or None."""
    if not client_id or not isinstance(client_id, str):
        return None
    client = db.session.scalars(select(OAuthClient).where(OAuthClient.client_id == client_id)).first()
    return client if client is not None and client.is_active else None


def query_client(client_id: str | None) -> OAuthClient | None:
    """The active client with this client_id, from the per-process cache when fresh (see client_cache).

    Remembered for the rest of the request: an authorization request looks its client up twice.
    """
    if not client_id or not isinstance(client_id, str):
        return None
    seen = clients_seen_by_request()
    if client_id not in seen:
        seen[client_id] = _cached_client(client_id)
    return seen[client_id]


def _cached_client(client_id: str) -> OAuthClient | None:
    cache = client_cache()
    if cache.ttl <= 0:
        return load_client(client_id)
    generation = current_generation()
    client = cache.get(client_id, generation)
    if client is None:
        client = load_client(client_id)
        if client is not None:
            cache.put(client, generation)
    return client
