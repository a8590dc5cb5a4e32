"""Password hashing (bcrypt) and the password policy (NIST SP 800-63B section 5.1.1.2)."""
from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from pathlib import Path

import bcrypt
from flask import current_app

MIN_LENGTH = 8
MAX_LENGTH = 256
_COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


def _prehash(password: str) -> bytes:
    """SHA-256 then base64, so every password fits bcrypt's 72-byte input whole.

    bcrypt silently ignores bytes past 72; pre-hashing keeps every character significant, and base64
    avoids the NUL bytes bcrypt would stop at.
    """
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash_password(password: str, rounds: int | None = None) -> str:
    """The bcrypt hash of `password` at BCRYPT_LOG_ROUNDS."""
    cost = rounds or current_app.config["BCRYPT_LOG_ROUNDS"]
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds=cost)).decode("ascii")


def verify_password(password: str, stored: str | None) -> bool:
    """Check `password` against `stored`; with no stored hash, burn the same time and fail."""
    if not stored:
        bcrypt.checkpw(_prehash(password), _dummy_hash(current_app.config["BCRYPT_LOG_ROUNDS"]))
        return False
    try:
        return bcrypt.checkpw(_prehash(password), stored.encode("ascii"))
    except ValueError:
        return False


@lru_cache(maxsize=8)
def _dummy_hash(rounds: int) -> bytes:
    """A well-formed bcrypt hash at `rounds` that no password matches, made without hashing.

    checkpw derives the key from the hash's cost and salt, then compares, so checking against it
    costs what checking a real hash costs; hashing a placeholder instead would have made each
    process's first unknown-address sign-in pay for two bcrypt runs.
    """
    return bcrypt.gensalt(rounds=rounds) + b"." * 31


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    lines = _COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip())


def password_problems(password: str, *, email: str | None = None, name: str | None = None) -> list[str]:
    """Reasons `password` is refused; empty when acceptable.

    Length 8..256 characters, not a commonly used password, not the account's own email or name.
    No composition rules, as SP 800-63B advises.
    """
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"Password must be at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        problems.append(f"Password must be at most {MAX_LENGTH} characters.")
    lowered = password.lower()
    if lowered in _common_passwords():
        problems.append("This password is too common; choose another.")
    identity = {(email or "").lower(), (email or "").split("@")[0].lower(), (name or "").lower()}
    if lowered in identity - {""}:
        problems.append("Password must not be your email address or name.")
    return problems
