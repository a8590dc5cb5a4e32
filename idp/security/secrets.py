"""Random tokens, their stored hashes, constant-time comparison and encryption at rest."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token with `nbytes` of entropy."""
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """The stored form of a high-entropy token: SHA-256 hex.

    Tokens carry 256 bits of entropy, so a fast hash is safe and keeps lookups O(1) by index.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_equal(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time equality for secrets."""
    a_bytes = a.encode("utf-8") if isinstance(a, str) else a
    b_bytes = b.encode("utf-8") if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)


def hash_client_secret(secret: str) -> str:
    """Stored form of a client secret: salted SHA-256, checked in microseconds, never bcrypt.

    Client secrets are generated with 256 bits of entropy, so brute force is not the threat a slow
    hash defends against; the token endpoint's hot path must not pay a bcrypt round.
    """
    salt = secrets.token_hex(16)
    digest = hashlib.sha256((salt + secret).encode("utf-8")).hexdigest()
    return f"sha256${salt}${digest}"


def check_client_secret(stored: str | None, candidate: str | None) -> bool:
    """Constant-time check of a client secret against its stored hash."""
    if not stored or candidate is None:
        return False
    try:
        scheme, salt, digest = stored.split("$", 2)
    except ValueError:
        return False
    if scheme != "sha256":
        return False
    computed = hashlib.sha256((salt + candidate).encode("utf-8")).hexdigest()
    return hmac.compare_digest(computed, digest)


class Encryptor:
    """Authenticated encryption at rest (Fernet) under ENCRYPTION_KEY."""

    def __init__(self, key: str):
        raw = base64.urlsafe_b64decode(key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str | None:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            return None
