"""Signing keys as files in KEYS_DIR, shared by every worker and node.

Layout: one private key per file (`<kid>.pem`, PKCS#8, mode 0600) and `metadata.json` naming each
key's alg and state with timestamps:

- next:    published in the JWKS, signs nothing yet (so relying parties cache it before use);
- active:  signs new tokens (the newest active key per algorithm);
- retired: signs nothing, stays published until every token it signed has expired.

Staleness: each process caches the parsed keys and re-reads them when `metadata.json`'s mtime or
size changes (checked with one stat() per use), so a rotation on any node is seen on the next
request everywhere.

`idp.services.signing_key_admin` holds the audited operations that `flask keys` and `/api/v1/keys`
both call, so the two refuse the same things.
"""
from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from joserfc.jwk import ECKey, Key, KeySet, RSAKey

from idp.models.base import utcnow

SUPPORTED_ALGS = ("RS256", "ES256")
METADATA_FILE = "metadata.json"


class KeyOperationError(RuntimeError):
    """A key operation that cannot be done (unknown kid, retiring the last signing key...)."""


class UnsupportedAlgorithm(KeyOperationError):
    """An algorithm this store cannot make keys for."""


class UnknownKey(KeyOperationError):
    """No key with that kid."""


class LastSigningKey(KeyOperationError):
    """Retiring this key would leave an algorithm that must sign without an active key."""


@dataclass
class SigningKey:
    kid: str
    alg: str
    state: str
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None
    key: Key

    def published(self, now: datetime, retention: int) -> bool:
        if self.state in ("next", "active"):
            return True
        return self.retired_at is not None and now < self.retired_at + timedelta(seconds=retention)

    def describe(self) -> dict:
        return {"kid": self.kid, "alg": self.alg, "state": self.state, "created_at": _iso(self.created_at),
                "activated_at": _iso(self.activated_at), "retired_at": _iso(self.retired_at)}


@dataclass(frozen=True)
class PublishedDocument:
    """A JSON document served as is: its bytes, built once, and their strong entity tag (RFC 9110
    8.8.3). The tag is a hash of the bytes, so every worker and node gives the same bytes the same tag."""
    body: bytes
    tag: str  # the opaque tag, unquoted (as werkzeug's ETags compares it)

    @property
    def etag(self) -> str:
        """The ETag header value (RFC 9110 8.8.3: a quoted opaque tag; strong, no W/ prefix)."""
        return f'"{self.tag}"'

    @classmethod
    def of(cls, document: dict) -> PublishedDocument:
        body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        return cls(body, base64.urlsafe_b64encode(hashlib.sha256(body).digest()[:18]).decode())


def _jwks_document(keys: list[SigningKey]) -> dict:
    """RFC 7517 5: a JWK Set of the keys' public members (RFC 7517 4.2-4.5: kid, alg, use "sig")."""
    return {"keys": [{**k.key.as_dict(private=False), "kid": k.kid, "alg": k.alg, "use": "sig"} for k in keys]}


def _activation(key: SigningKey) -> datetime:
    return key.activated_at or key.created_at


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _check_alg(alg: str) -> None:
    if alg not in SUPPORTED_ALGS:
        raise UnsupportedAlgorithm(f"unsupported algorithm {alg!r}; use one of {', '.join(SUPPORTED_ALGS)}")


def _new_private_key(alg: str) -> Key:
    _check_alg(alg)
    if alg == "RS256":
        return RSAKey.generate_key(2048, private=True)
    return ECKey.generate_key("P-256", private=True)


class KeyStore:
    """The key files of one KEYS_DIR, with a per-process cache keyed on the metadata file's stat."""

    def __init__(self, directory: str, retention_seconds: int):
        self.directory = Path(directory)
        # A plain str for os.stat: this check runs on every signature, and pathlib adds measurable cost.
        self._metadata_path = str(self.directory / METADATA_FILE)
        self.retention = retention_seconds
        self._cache: tuple[tuple, list[SigningKey]] | None = None
        # (keys version, unix time the document stops being right, the document)
        self._jwks: tuple[tuple, float, PublishedDocument] | None = None
        # (keys version, alg -> the key that signs for it): chosen once per key change, not per signature
        self._signing: tuple[tuple, dict[str, SigningKey]] | None = None
        self._lock = threading.Lock()

    # -- reading --
    def keys(self) -> list[SigningKey]:
        """Every key on disk, re-read when metadata.json changed since the last call."""
        return list(self._snapshot()[1])

    def version(self) -> tuple:
        """What identifies the keys on disk now (metadata.json's stat; one stat() call): it changes
        whenever a key is generated, rotated or retired, on any node. Documents built from the keys
        (the JWKS, the discovery documents) are rebuilt when it changes."""
        return self._snapshot()[0]

    def _snapshot(self) -> tuple[tuple, list[SigningKey]]:
        try:
            stat = os.stat(self._metadata_path)
        except FileNotFoundError:
            return (), []
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if self._cache is None or self._cache[0] != signature:
                self._cache = (signature, self._load(Path(self._metadata_path)))
            return self._cache

    def _load(self, path: Path) -> list[SigningKey]:
        entries = json.loads(path.read_text()).get("keys", [])
        loaded = []
        for entry in entries:
            try:
                pem = (self.directory / f"{entry['kid']}.pem").read_bytes()
            except OSError:
                # One unreadable key must not take down signing with the others.
                logging.getLogger(__name__).error("signing key file for kid %s is missing or unreadable", entry["kid"])
                continue
            key_cls = RSAKey if entry["alg"] == "RS256" else ECKey
            key = key_cls.import_key(pem, {"kid": entry["kid"], "alg": entry["alg"], "use": "sig"})
            loaded.append(SigningKey(entry["kid"], entry["alg"], entry["state"], _parse(entry["created_at"]),
                                     _parse(entry.get("activated_at")), _parse(entry.get("retired_at")), key))
        return loaded

    def signing_key(self, alg: str = "RS256") -> SigningKey | None:
        """The newest active key for `alg`, or None."""
        signature, keys = self._snapshot()
        chosen = self._signing
        if chosen is None or chosen[0] != signature:
            newest: dict[str, SigningKey] = {}
            for key in keys:
                if key.state == "active" and (key.alg not in newest or _activation(key) > _activation(newest[key.alg])):
                    newest[key.alg] = key
            chosen = self._signing = (signature, newest)
        return chosen[1].get(alg)

    def active_algs(self) -> list[str]:
        return sorted({k.alg for k in self.keys() if k.state == "active"}, key=SUPPORTED_ALGS.index)

    def published(self) -> list[SigningKey]:
        now = utcnow()
        return [k for k in self.keys() if k.published(now, self.retention)]

    def public_jwks(self) -> dict:
        """The JWKS document: public members only, every published key."""
        return _jwks_document(self.published())

    def published_jwks(self) -> PublishedDocument:
        """The JWKS document as bytes with a strong ETag, built once per key change: again when
        metadata.json changes (a rotation on any node shows at once), or when a retired key's
        publication ends (retired_at + retention), whichever comes first."""
        signature, keys = self._snapshot()  # one stat(): the keys are those the signature names
        cached = self._jwks
        if cached is not None and cached[0] == signature and time.time() < cached[1]:
            return cached[2]
        now = utcnow()
        published = [k for k in keys if k.published(now, self.retention)]
        ends = [(k.retired_at + timedelta(seconds=self.retention)).timestamp() for k in published
                if k.state == "retired" and k.retired_at is not None]
        document = PublishedDocument.of(_jwks_document(published))
        self._jwks = (signature, min(ends, default=float("inf")), document)
        return document

    def verification_keyset(self) -> KeySet:
        """Published keys, for checking tokens this server signed."""
        return KeySet([k.key for k in self.published()])

    # -- writing (CLI and development start-up) --
    @contextmanager
    def _locked(self):
        """Serialise writers across processes with a lock on the directory itself (no lock file)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            os.close(descriptor)

    def _entries(self) -> list[dict]:
        path = self.directory / METADATA_FILE
        return json.loads(path.read_text()).get("keys", []) if path.exists() else []

    def _write_entries(self, entries: list[dict]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".metadata-", suffix=".json")
        with os.fdopen(fd, "w") as handle:
            json.dump({"keys": entries}, handle, indent=2)
        os.replace(tmp, self.directory / METADATA_FILE)

    def _add_key(self, entries: list[dict], alg: str, state: str) -> dict:
        key = _new_private_key(alg)
        kid = f"{alg.lower()}-{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
        pem_path = self.directory / f"{kid}.pem"
        descriptor = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key.as_pem(private=True))
        now = _iso(utcnow())
        entry = {"kid": kid, "alg": alg, "state": state, "created_at": now,
                 "activated_at": now if state == "active" else None, "retired_at": None}
        entries.append(entry)
        return entry

    def generate(self, alg: str = "RS256") -> dict:
        """Add a key in state `next`: published at once, signing only after `rotate`."""
        _check_alg(alg)
        with self._locked():
            entries = self._entries()
            entry = self._add_key(entries, alg, "next")
            self._write_entries(entries)
        return entry

    def ensure(self, algs: tuple[str, ...] = SUPPORTED_ALGS) -> list[dict]:
        """Make an active key for each alg that has none (first run); returns the keys made."""
        made = []
        with self._locked():
            entries = self._entries()
            for alg in algs:
                if not any(e["alg"] == alg and e["state"] == "active" for e in entries):
                    made.append(self._add_key(entries, alg, "active"))
            if made:
                self._write_entries(entries)
        return made

    def rotate(self, alg: str = "RS256") -> tuple[str, dict]:
        """Promote the oldest `next` key of `alg` to active and retire the previous active one.

        Without a `next` key, one is generated and published instead ('published'): it must sit in
        the JWKS for longer than relying parties cache it before a second `rotate` activates it.
        """
        _check_alg(alg)
        with self._locked():
            entries = self._entries()
            waiting = [e for e in entries if e["alg"] == alg and e["state"] == "next"]
            if not waiting:
                entry = self._add_key(entries, alg, "next")
                self._write_entries(entries)
                return "published", entry
            promoted = min(waiting, key=lambda e: e["created_at"])
            now = _iso(utcnow())
            for entry in entries:
                if entry["alg"] == alg and entry["state"] == "active":
                    entry.update(state="retired", retired_at=now)
            promoted.update(state="active", activated_at=now)
            self._write_entries(entries)
        return "activated", promoted

    def retire(self, kid: str, protected_algs: frozenset[str] = frozenset({"RS256"})) -> dict:
        """Stop signing with `kid`; it stays published until its tokens have expired.

        The only active key of an algorithm in `protected_algs` is never retired: something must
        keep signing with it (RS256 signs every access token).
        """
        with self._locked():
            entries = self._entries()
            entry = next((e for e in entries if e["kid"] == kid), None)
            if entry is None:
                raise UnknownKey(f"There is no key with kid {kid!r}.")
            others = [e for e in entries if e["alg"] == entry["alg"] and e["state"] == "active" and e is not entry]
            if entry["state"] == "active" and entry["alg"] in protected_algs and not others:
                raise LastSigningKey(f"Refusing to retire the only active {entry['alg']} key; rotate first.")
            if entry["state"] != "retired":
                entry.update(state="retired", retired_at=_iso(utcnow()))
                self._write_entries(entries)
        return entry
