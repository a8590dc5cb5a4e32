"""What an OpenID provider publishes, fetched through the guarded client and kept per process.

Discovery documents (OpenID Connect Discovery 1.0 section 4) are kept for an hour and key sets
(RFC 7517) for ten minutes, so a sign-in costs no round-trip to either in the common case. A token
signed with a key the cached set does not hold makes the verifier ask for the set again
(`key_set(..., refresh=True)`): providers publish a new key before they sign with it, so one refetch
follows a rotation at once. Such forced refetches of one key set happen at most once a minute, so
tokens with made-up `kid`s cannot turn this IdP into a load generator against the provider.

The cache is bounded (least recently used entries go first) and safe to use from several threads.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.federation.http import UpstreamHttp, UpstreamHttpError

DISCOVERY_TTL = 3600
JWKS_TTL = 600
FORCED_REFETCH_INTERVAL = 60
MAX_ENTRIES = 256
REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")


class MetadataInvalid(UpstreamHttpError):
    """The provider answered, but not with usable metadata; the message says what is wrong."""


class _Entry:
    __slots__ = ("value", "fetched_at", "forced_at")

    def __init__(self, value, fetched_at: float, forced_at: float | None = None):
        self.value = value
        self.fetched_at = fetched_at
        self.forced_at = forced_at


class _Cache:
    """A bounded, thread-safe map from URL to (value, fetch time)."""

    def __init__(self, max_entries: int = MAX_ENTRIES):
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, url: str) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(url)
            if entry is not None:
                self._entries.move_to_end(url)
            return entry

    def put(self, url: str, entry: _Entry) -> None:
        with self._lock:
            self._entries[url] = entry
            self._entries.move_to_end(url)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_discovery = _Cache()
_jwks = _Cache()


def clear_cache() -> None:
    """Forget every cached document (tests, and an admin changing an upstream's issuer)."""
    _discovery.clear()
    _jwks.clear()


def discovery_url(issuer: str) -> str:
    """Where `issuer` publishes its configuration (OpenID Connect Discovery 1.0 section 4)."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def fetch_discovery(http: UpstreamHttp, url: str, *, fresh: bool = False) -> dict:
    """The provider configuration at `url`, cached (`fresh`: ask again, as saving settings does);
    MetadataInvalid or UpstreamHttpError when unusable.

    The caller compares its `issuer` with the one it expects (Discovery 1.0 section 4.3).
    """
    entry = _discovery.get(_key(http, url))
    if not fresh and entry is not None and time.time() - entry.fetched_at < DISCOVERY_TTL:
        return entry.value
    document = _read_discovery(http, url)
    _discovery.put(_key(http, url), _Entry(document, time.time()))
    return document


def _read_discovery(http: UpstreamHttp, url: str) -> dict:
    status, document = http.get_json(url)
    if status != 200:
        raise MetadataInvalid(f"the discovery document at {url} answered HTTP {status}")
    if not isinstance(document, dict):
        raise MetadataInvalid(f"the discovery document at {url} is not a JSON object")
    for name in ("issuer", *REQUIRED_ENDPOINTS):
        if not isinstance(document.get(name), str) or not document[name]:
            raise MetadataInvalid(f"the discovery document at {url} has no {name}")
    types = document.get("response_types_supported")
    if isinstance(types, list) and "code" not in types:
        raise MetadataInvalid(f"the provider at {url} does not support response_type=code")
    return document


def key_set(http: UpstreamHttp, jwks_uri: str, *, refresh: bool = False, fresh: bool = False) -> KeySet:
    """The provider's signing keys (RFC 7517 section 5), cached.

    `refresh`: a token named a key the cached set lacks; fetch again unless a forced refetch of
    this set happened less than FORCED_REFETCH_INTERVAL ago (then the cached set is the answer).
    `fresh`: ask again unconditionally (saving settings).
    """
    now = time.time()
    entry = _jwks.get(_key(http, jwks_uri))
    if entry is not None and not fresh:
        fresh = now - entry.fetched_at < JWKS_TTL
        throttled = entry.forced_at is not None and now - entry.forced_at < FORCED_REFETCH_INTERVAL
        if (fresh and not refresh) or (refresh and throttled):
            return entry.value
    keys = _read_key_set(http, jwks_uri)
    forced_at = now if refresh else (entry.forced_at if entry is not None else None)
    _jwks.put(_key(http, jwks_uri), _Entry(keys, now, forced_at))
    return keys


def _key(http: UpstreamHttp, url: str) -> str:
    # What an unguarded client fetched (development) must never answer a guarded one.
    return f"{'private' if http.allow_private else 'guarded'} {url}"


def _read_key_set(http: UpstreamHttp, jwks_uri: str) -> KeySet:
    status, document = http.get_json(jwks_uri)
    if status != 200:
        raise MetadataInvalid(f"the key set at {jwks_uri} answered HTTP {status}")
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise MetadataInvalid(f"the key set at {jwks_uri} is not a JWK Set")
    # Private members or symmetric keys in a published set are the provider's mistake; never use them.
    public = [key for key in document["keys"]
              if isinstance(key, dict) and key.get("kty") in ("RSA", "EC", "OKP") and "d" not in key
              and key.get("use", "sig") == "sig"]
    try:
        return KeySet.import_key_set({"keys": public})
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise MetadataInvalid(f"the key set at {jwks_uri} has no usable signing key: {error}") from None
