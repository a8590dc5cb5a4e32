"""Upstream identity providers as stored: lookups for sign-in, and their secrets encrypted at rest."""
from __future__ import annotations

import json

from flask import current_app
from sqlalchemy import select

from idp.extensions import db
from idp.models import Upstream
from idp.security.secrets import Encryptor


def _encryptor() -> Encryptor:
    encryptor = current_app.extensions.get("encryptor")
    if encryptor is None:
        encryptor = current_app.extensions["encryptor"] = Encryptor(current_app.config["ENCRYPTION_KEY"])
    return encryptor


def encrypt_json(value: dict) -> str:
    """`value` as Fernet ciphertext under ENCRYPTION_KEY."""
    return _encryptor().encrypt(json.dumps(value, separators=(",", ":")))


def decrypt_json(ciphertext: str | None) -> dict:
    """The dict encrypted by `encrypt_json`; empty when there is none or it cannot be read."""
    plaintext = _encryptor().decrypt(ciphertext) if ciphertext else None
    return json.loads(plaintext) if plaintext else {}


def secrets_of(upstream: Upstream) -> dict:
    """The upstream's write-only settings (client_secret, SP private key), decrypted."""
    return decrypt_json(upstream.secrets_encrypted)


def set_secrets(upstream: Upstream, secrets: dict) -> None:
    upstream.secrets_encrypted = encrypt_json(secrets) if secrets else None


def find_enabled(slug: str | None) -> Upstream | None:
    """The enabled upstream with this slug, or None (a disabled or deleted one signs nobody in)."""
    if not slug or len(slug) > 64:
        return None
    upstream = db.session.scalars(select(Upstream).where(Upstream.slug == slug)).first()
    return upstream if upstream is not None and upstream.enabled else None


def enabled_platform_upstreams() -> list[Upstream]:
    """The upstreams every sign-in page offers: enabled and not an organization's own."""
    query = (select(Upstream).where(Upstream.enabled.is_(True), Upstream.organization_id.is_(None))
             .order_by(Upstream.display_name))
    return list(db.session.scalars(query))


def upstream_for_email(email: str | None) -> Upstream | None:
    """Home-realm discovery: the enabled upstream whose email_domains hold this address's domain."""
    domain = (email or "").rpartition("@")[2].strip().lower()
    if not domain:
        return None
    for upstream in db.session.scalars(select(Upstream).where(Upstream.enabled.is_(True))):
        if domain in (upstream.email_domains or []):
            return upstream
    return None
