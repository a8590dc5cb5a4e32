"""The audited signing-key operations that `flask keys` and `/api/v1/keys` share: list, generate,
rotate, retire, with the KeyStore's refusals as AppErrors (404 unknown kid, 409 last signing key or a
read-only KEYS_DIR, 422 unsupported algorithm).

A change is written to KEYS_DIR; every process re-reads the keys when metadata.json changes (see
idp.services.signing_keys), so the JWKS and discovery of every worker and node serve it on their
next request.
"""
from __future__ import annotations

import errno
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from idp.errors import Conflict, NotFound, ValidationError
from idp.extensions import db
from idp.models import OAuthClient
from idp.models.base import utcnow
from idp.services import audit
from idp.services.signing_keys import KeyStore, LastSigningKey, SigningKey, UnknownKey, UnsupportedAlgorithm

WRITE_REFUSED_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}


def key_store() -> KeyStore:
    """This app's signing keys (made at start-up by setup_oidc)."""
    return current_app.extensions["oidc"]["keys"]


@dataclass(frozen=True)
class KeySummary:
    """One key as an operator sees it: no key material, and whether the JWKS serves it."""

    kid: str
    alg: str
    state: str
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None
    published: bool
    published_until: datetime | None  # a retired key leaves the JWKS then (its last tokens have expired)


def _summary(key: SigningKey, store: KeyStore, now: datetime) -> KeySummary:
    until = key.retired_at + timedelta(seconds=store.retention) if key.retired_at else None
    return KeySummary(key.kid, key.alg, key.state, key.created_at, key.activated_at, key.retired_at,
                      key.published(now, store.retention), until)


def list_keys(limit: int, after: str | None = None) -> tuple[list[KeySummary], str | None]:
    """A page of the keys in KEYS_DIR, newest first, and the kid to continue after (None at the end).

    Keyset order (created_at, kid), so a key made between two pages shifts nothing; `after` is the
    previous page's last kid, a ValidationError naming `cursor` when no key has it.
    """
    store, now = key_store(), utcnow()
    ordered = sorted(store.keys(), key=lambda k: (k.created_at, k.kid), reverse=True)
    if after is not None:
        position = next((index for index, key in enumerate(ordered) if key.kid == after), None)
        if position is None:
            raise ValidationError(details={"cursor": ["The cursor is not valid; start again without one."]})
        ordered = ordered[position + 1:]
    page = ordered[:limit]
    next_kid = page[-1].kid if len(ordered) > limit else None
    return [_summary(key, store, now) for key in page], next_kid


def get_key(kid: str) -> KeySummary:
    """One key by kid; NotFound when there is none."""
    store = key_store()
    key = next((k for k in store.keys() if k.kid == kid), None)
    if key is None:
        raise NotFound(f"There is no key with kid {kid!r}.")
    return _summary(key, store, utcnow())


def generate_key(alg: str, *, actor_user_id: str | None = None, actor_client_id: str | None = None) -> KeySummary:
    """Publish a new key in state `next` (it signs after a rotation); audited as key.generated."""
    entry = _write(lambda: key_store().generate(alg), "key.generated", actor_user_id, actor_client_id)
    _audit("key.generated", entry, actor_user_id, actor_client_id)
    return get_key(entry["kid"])


def rotate_keys(alg: str, *, actor_user_id: str | None = None,
                actor_client_id: str | None = None) -> tuple[str, KeySummary, list[str]]:
    """Activate the waiting `next` key of `alg` and retire the active one, or only publish a `next` key
    when none waits ("published"). Returns the outcome, the key it concerns, and the kids it retired."""
    outcome, entry = _write(lambda: key_store().rotate(alg), "key.rotated", actor_user_id, actor_client_id)
    # rotate() stamps the promoted key's activation and its predecessors' retirement with one instant.
    activated_at = datetime.fromisoformat(entry["activated_at"]) if outcome == "activated" else None
    retired = [k.kid for k in key_store().keys()
               if activated_at and k.alg == alg and k.state == "retired" and k.retired_at == activated_at]
    _audit("key.rotated", entry, actor_user_id, actor_client_id, outcome=outcome, retired=retired)
    return outcome, get_key(entry["kid"]), retired


def retire_key(kid: str, *, actor_user_id: str | None = None, actor_client_id: str | None = None) -> KeySummary:
    """Stop signing with `kid` (it stays published until its tokens expire); audited as key.retired.

    Refuses (Conflict) the only active key of RS256, and of any algorithm a client has its ID tokens
    signed with (OIDC Registration 2, id_token_signed_response_alg): its token requests would fail.
    Retiring a retired key changes nothing.
    """
    before = get_key(kid)
    protected = frozenset({"RS256", *_client_signing_algs()})
    entry = _write(lambda: key_store().retire(kid, protected), "key.retired", actor_user_id, actor_client_id, kid)
    if before.state != "retired":
        _audit("key.retired", entry, actor_user_id, actor_client_id, previous_state=before.state)
    return get_key(kid)


def _client_signing_algs() -> set[str]:
    return set(db.session.scalars(select(OAuthClient.id_token_signed_response_alg).distinct()))


def _write(operation, action: str, actor_user_id: str | None, actor_client_id: str | None, kid: str | None = None):
    """Run a KeyStore write, its refusals as AppErrors (a refused change is audited as a failure)."""
    try:
        return operation()
    except UnsupportedAlgorithm as error:
        raise ValidationError(details={"alg": [str(error)]}) from error
    except UnknownKey as error:
        raise NotFound(str(error)) from error
    except LastSigningKey as error:
        _audit_failure(action, kid, actor_user_id, actor_client_id, "last_active_key")
        raise Conflict(str(error)) from error
    except OSError as error:
        if error.errno not in WRITE_REFUSED_ERRNOS:
            raise
        logging.getLogger(__name__).warning("cannot write signing keys in %s: %s", key_store().directory, error)
        _audit_failure(action, kid, actor_user_id, actor_client_id, "keys_dir_read_only")
        raise Conflict("This server cannot write its signing keys (KEYS_DIR is read-only here); run "
                       "`flask keys` where KEYS_DIR is writable.") from error


def _actor_details(actor_client_id: str | None) -> dict:
    return {"actor_client_id": actor_client_id} if actor_client_id else {}


def _audit(action: str, entry: dict, actor_user_id: str | None, actor_client_id: str | None, **details) -> None:
    audit.record(action, actor_user_id=actor_user_id, target_type="signing_key", target_id=entry["kid"],
                 details={"kid": entry["kid"], "alg": entry["alg"], **details, **_actor_details(actor_client_id)})


def _audit_failure(action: str, kid: str | None, actor_user_id: str | None, actor_client_id: str | None,
                   reason: str) -> None:
    audit.record_failure(action, actor_user_id=actor_user_id, target_type="signing_key", target_id=kid,
                         details={"reason": reason, **_actor_details(actor_client_id)})
