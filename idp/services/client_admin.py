"""Managing OAuth clients for the management API: create, change, rotate the secret, delete.

Metadata is checked by the rules /oauth2/register uses (idp.services.client_metadata). Who may act on
which client is the API's to decide (organization roles); here are the rules only a platform admin
passes: `first_party`, a platform client (no organization), and management scopes in `scope`. The
secret is generated here, returned once and stored as a salted hash. Every change is audited with
the changed field names (never a secret) and announced to every worker's client cache after commit.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import Select, or_, select

from idp.errors import Forbidden, NotFound
from idp.extensions import db
from idp.models import OAuthClient, Organization, utcnow
from idp.security.secrets import hash_client_secret, new_token
from idp.services import audit
from idp.services.client_generation import client_changed
from idp.services.client_metadata import refuse, validate_client_metadata
from idp.services.client_registration import apply_metadata
from idp.services.management_scopes import MANAGEMENT_SCOPES, management_scopes_in
from idp.services.organization_access import managed_organizations_query

# Fields of /api/v1/clients beyond RFC 7591 metadata (client_name maps onto the `name` column).
POLICY_FIELDS = ("require_pkce", "first_party", "access_token_lifetime", "refresh_token_lifetime", "is_active")
PLATFORM_ADMIN_FIELDS = ("first_party",)
NO_SECRET_METHODS = ("none", "private_key_jwt")
MAX_GRACE_PERIOD = 7 * 86400
# Standard scopes a client gets when it names none (as /oauth2/register); `organizations` must be asked for.
WITHHELD_FROM_DEFAULT_SCOPE = ("organizations", *MANAGEMENT_SCOPES)


@dataclass(frozen=True)
class ClientActor:
    """Who makes a change: the audit row's actor and whether platform-admin-only changes are allowed."""

    user_id: str | None
    client_id: str | None  # a service account's client_id, for the audit details
    platform_admin: bool

    def audit_details(self) -> dict:
        return {"actor_client_id": self.client_id} if self.client_id else {}


def clients_query(organization_ids: list[str] | None, organization_id: str | None = None,
                  q: str | None = None) -> Select:
    """The clients of `organization_ids` (None: every client, platform ones included), optionally of
    one organization, whose name or client_id contains `q` (case-insensitive)."""
    query = select(OAuthClient)
    if organization_ids is not None:
        query = query.where(OAuthClient.organization_id.in_(organization_ids))
    if organization_id is not None:
        query = query.where(OAuthClient.organization_id == organization_id)
    if q:
        query = query.where(or_(OAuthClient.name.icontains(q, autoescape=True),
                                OAuthClient.client_id.icontains(q, autoescape=True)))
    return query


def managed_organization_ids(user_id: str) -> list[str]:
    """The organizations whose clients a user manages: those where they are an owner or admin."""
    return list(db.session.scalars(managed_organizations_query(user_id)))


def find_client(client_id: str, *, for_update: bool = False) -> OAuthClient | None:
    """The client with this client_id (active or not); locked FOR UPDATE for a conditional write
    (RFC 9110 13.1.1: of two writers with one ETag, the second sees the first's change)."""
    if not isinstance(client_id, str) or len(client_id) > 100:
        return None
    query = select(OAuthClient).where(OAuthClient.client_id == client_id)
    if for_update:
        query = query.with_for_update()
    return db.session.scalars(query).first()


def _metadata_of(data: dict) -> dict:
    """The RFC 7591 members of API fields; a null leaves the member out (it is cleared, as RFC 7592 2.2
    clears a member an update omits)."""
    return {name: value for name, value in data.items()
            if name not in (*POLICY_FIELDS, "organization_id") and value is not None}


def _require_platform_admin_for(actor: ClientActor, data: dict, previous: OAuthClient | None = None) -> None:
    """Management scopes newly in `scope`, and first_party, only from a platform admin (403 naming the field)."""
    if actor.platform_admin:
        return
    kept = previous.scope.split() if previous is not None else []
    granted = [scope for scope in management_scopes_in(data.get("scope")) if scope not in kept]
    if granted:
        message = f"Only a platform admin grants {', '.join(granted)}."
        raise Forbidden(message, details={"scope": [message]})
    for name in PLATFORM_ADMIN_FIELDS:
        if name in data and data[name] != (getattr(previous, name) if previous is not None else False):
            message = f"Only a platform admin sets {name}."
            raise Forbidden(message, details={name: [message]})


def _validated(data: dict, server_metadata: dict) -> dict:
    """The metadata checked as /oauth2/register checks it (management scopes supported here too),
    with the default scope."""
    supported = {**server_metadata, "scopes_supported": [*server_metadata.get("scopes_supported", []),
                                                         *sorted(MANAGEMENT_SCOPES)]}
    metadata = validate_client_metadata(_metadata_of(data), supported)
    metadata["scope"] = metadata.get("scope") or default_scope(server_metadata)
    _check_lifetimes(data)
    return metadata


def default_scope(server_metadata: dict) -> str:
    return " ".join(s for s in server_metadata.get("scopes_supported", []) if s not in WITHHELD_FROM_DEFAULT_SCOPE)


def _check_lifetimes(data: dict) -> None:
    """A client's access tokens may be shorter-lived than ACCESS_TOKEN_LIFETIME, never longer: a
    retired signing key stays published only that long, so a longer token would stop verifying."""
    longest = current_app.config["ACCESS_TOKEN_LIFETIME"]
    lifetime = data.get("access_token_lifetime")
    if lifetime is not None and lifetime > longest:
        raise refuse("access_token_lifetime", f"At most ACCESS_TOKEN_LIFETIME ({longest} seconds).")


def _apply_policy(client: OAuthClient, data: dict) -> None:
    for name in POLICY_FIELDS:
        if name in data:
            setattr(client, name, data[name])


def _audit(action: str, actor: ClientActor, client: OAuthClient, **details) -> None:
    audit.record(action, actor_user_id=actor.user_id, target_type="client", target_id=client.client_id,
                 organization_id=client.organization_id, details={**actor.audit_details(), **details})


def _snapshot(client: OAuthClient) -> dict:
    return {**client.client_metadata, **{name: getattr(client, name) for name in POLICY_FIELDS},
            "organization_id": client.organization_id}


def create_client(actor: ClientActor, data: dict, server_metadata: dict) -> tuple[OAuthClient, str | None]:
    """A new client from API fields (RFC 7591 names plus ours); returns it and its secret, shown once
    (None for public and private_key_jwt clients)."""
    organization_id = data.get("organization_id")
    if organization_id is None and not actor.platform_admin:
        raise refuse("organization_id", "Required: only platform admins create platform clients.")
    if organization_id is not None and db.session.get(Organization, organization_id) is None:
        raise NotFound("Organization not found.")
    _require_platform_admin_for(actor, data)
    metadata = _validated(data, server_metadata)
    secret = None if metadata["token_endpoint_auth_method"] in NO_SECRET_METHODS else new_token(32)
    client = OAuthClient(client_id="cl-" + new_token(16), organization_id=organization_id,
                         client_secret_hash=hash_client_secret(secret) if secret else None, name="")
    apply_metadata(client, metadata)
    _apply_policy(client, data)
    db.session.add(client)
    db.session.flush()
    _audit("client.created", actor, client, fields=sorted(data))
    client_changed()
    return client, secret


def update_client(actor: ClientActor, client: OAuthClient, data: dict, server_metadata: dict) -> list[str]:
    """Change the fields given, the rest keeping their values; the merged metadata is checked whole,
    as RFC 7592 2.2 checks a replacement. Returns the changed field names (audited)."""
    if "organization_id" in data and data["organization_id"] != client.organization_id:
        raise refuse("organization_id", "A client's organization never changes; create a new client instead.")
    _require_platform_admin_for(actor, data, previous=client)
    before = _snapshot(client)
    metadata = _validated({**client.client_metadata, **data}, server_metadata)
    apply_metadata(client, metadata)
    _apply_policy(client, data)
    changed = audit.changed_fields(before, _snapshot(client))
    if changed:
        db.session.flush()
        _audit("client.updated", actor, client, changed=changed)
        client_changed()
    return changed


def rotate_secret(actor: ClientActor, client: OAuthClient, grace_period: int) -> str:
    """A new secret, returned once; the old one is still accepted for `grace_period` seconds (0: not at all)."""
    if client.client_secret_hash is None:
        raise refuse("token_endpoint_auth_method",
                     f"A {client.token_endpoint_auth_method} client has no secret to rotate.")
    if not 0 <= grace_period <= MAX_GRACE_PERIOD:
        raise refuse("grace_period", f"Between 0 and {MAX_GRACE_PERIOD} seconds.")
    secret = new_token(32)
    client.previous_secret_hash = client.client_secret_hash if grace_period else None
    client.previous_secret_expires_at = utcnow() + timedelta(seconds=grace_period) if grace_period else None
    client.client_secret_hash = hash_client_secret(secret)
    db.session.flush()
    _audit("client.secret_rotated", actor, client, grace_period=grace_period)
    client_changed()
    return secret


def delete_client(actor: ClientActor, client: OAuthClient) -> None:
    """Delete the client: its tokens, grants and consents go with it (ON DELETE CASCADE), and its
    client-credentials tokens, which name a client that no longer exists, stop verifying."""
    _audit("client.deleted", actor, client, client_name=client.name)
    db.session.delete(client)
    db.session.flush()
    client_changed()
