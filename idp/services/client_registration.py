"""Dynamic client registration (RFC 7591/7592) storage: initial access tokens and registered clients."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from idp.extensions import db
from idp.models import InitialAccessToken, OAuthClient, utcnow
from idp.models.client import OPTIONAL_METADATA
from idp.security.secrets import hash_client_secret, hash_token, new_token
from idp.services import audit
from idp.services.client_generation import client_changed
from idp.services import tokens as token_records


def issue_initial_access_token(created_by: str | None = None, lifetime: int | None = None) -> str:
    """A single-use bearer token that lets its holder register one client; only its hash is kept."""
    token = new_token(32)
    seconds = lifetime or current_app.config["INITIAL_ACCESS_TOKEN_LIFETIME"]
    db.session.add(InitialAccessToken(token_hash=hash_token(token), created_by=created_by,
                                      expires_at=utcnow() + timedelta(seconds=seconds)))
    audit.record("client.initial_token_issued", actor_user_id=created_by)
    db.session.flush()
    return token


def find_initial_access_token(token: str | None) -> InitialAccessToken | None:
    """The unused, unexpired initial access token behind `token`, or None."""
    if not token:
        return None
    row = db.session.scalars(select(InitialAccessToken).where(InitialAccessToken.token_hash == hash_token(token))).first()
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    return row


def find_by_registration_token(token: str | None) -> OAuthClient | None:
    """The active client whose RFC 7592 registration access token this is, or None."""
    if not token:
        return None
    query = select(OAuthClient).where(OAuthClient.registration_access_token_hash == hash_token(token),
                                      OAuthClient.is_active.is_(True))
    return db.session.scalars(query).first()


def register_client(metadata: dict, client_id: str, client_secret: str | None,
                    initial_token: InitialAccessToken | None, actor_user_id: str | None = None) -> tuple[OAuthClient, str]:
    """Create a client from validated metadata; returns it and its registration access token."""
    registration_token = new_token(32)
    client = OAuthClient(client_id=client_id, client_secret_hash=hash_client_secret(client_secret) if client_secret else None,
                         registration_access_token_hash=hash_token(registration_token), registered_at=utcnow(),
                         name=metadata.get("client_name") or client_id)
    apply_metadata(client, metadata)
    if initial_token is not None:
        initial_token.used_at = utcnow()
    db.session.add(client)
    audit.record("client.registered", actor_user_id=actor_user_id or (initial_token.created_by if initial_token else None),
                 target_type="client", target_id=client_id)
    db.session.flush()
    return client, registration_token


def apply_metadata(client: OAuthClient, metadata: dict) -> None:
    """Copy registered metadata onto the client, with RFC 7591 2 defaults for what is absent."""
    client.name = metadata.get("client_name") or client.name
    client.redirect_uris = list(metadata.get("redirect_uris") or [])
    client.post_logout_redirect_uris = list(metadata.get("post_logout_redirect_uris") or [])
    client.grant_types = list(metadata.get("grant_types") or ["authorization_code"])
    client.response_types = list(metadata.get("response_types") or ["code"])
    client.scope = metadata.get("scope") or "openid"
    client.token_endpoint_auth_method = metadata.get("token_endpoint_auth_method") or "client_secret_basic"
    client.id_token_signed_response_alg = metadata.get("id_token_signed_response_alg") or "RS256"
    for name in OPTIONAL_METADATA:
        setattr(client, name, metadata.get(name))
    # Back-Channel Logout 1.0 2.2, Front-Channel Logout 1.0 2: false when not given.
    client.backchannel_logout_session_required = bool(metadata.get("backchannel_logout_session_required"))
    client.frontchannel_logout_session_required = bool(metadata.get("frontchannel_logout_session_required"))


def update_client(client: OAuthClient, metadata: dict) -> None:
    """RFC 7592 2.2: the registration replaced by `metadata`; every worker's cache drops the old one."""
    before = client.client_metadata
    apply_metadata(client, metadata)
    changed = audit.changed_fields(before, client.client_metadata)
    audit.record("client.updated", target_type="client", target_id=client.client_id,
                 organization_id=client.organization_id, details={"changed": changed, "via": "registration"})
    client_changed()


def deregister_client(client: OAuthClient) -> None:
    """RFC 7592 2.3: the client_id and registration token stop working; its tokens are revoked."""
    client_changed()
    client.is_active = False
    client.registration_access_token_hash = None
    count = token_records.revoke_client_tokens(client)
    audit.record("client.deleted", target_type="client", target_id=client.client_id, details={"tokens_revoked": count})
    db.session.flush()
