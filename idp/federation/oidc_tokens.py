"""ID token validation for OpenID Connect upstreams (OpenID Connect Core 1.0 section 3.1.3.7).

Each check is one named step raising FederationRefused with its own reason, in the order the spec
lists them: the signature first (so nothing unverified is read), then iss, aud, azp, exp, iat, nonce.
"""
from __future__ import annotations

import base64
import hmac
import time
from collections.abc import Callable, Collection

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

from idp.federation.connector import FederationRefused
from idp.security import bounded_json

# Clock difference tolerated between this IdP and the provider, in seconds.
CLOCK_SKEW = 60
# The algorithm a provider that advertises none is assumed to use (Discovery 1.0 section 3).
DEFAULT_ALGORITHMS = ("RS256",)
# Asymmetric signatures only: an HS* ID token would be keyed with our own client secret.
ASYMMETRIC = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}

# (refresh: bool) -> the provider's key set; refresh=True after a token named an unknown key.
KeyLoader = Callable[[bool], KeySet]


def allowed_algorithms(metadata: dict) -> tuple[str, ...]:
    """The signing algorithms to accept: those the provider advertises for ID tokens, never `none`
    nor a symmetric one (RFC 8725 3.1, 3.2), RS256 when it advertises none (Discovery 1.0 section 3)."""
    advertised = metadata.get("id_token_signing_alg_values_supported")
    if not isinstance(advertised, list) or not advertised:
        return DEFAULT_ALGORITHMS
    return tuple(alg for alg in advertised if alg in ASYMMETRIC)


def verify_signature(raw: str, keys: KeyLoader, algorithms: Collection[str]) -> dict:
    """The claims of `raw` once its JWS signature verifies with the provider's key named by `kid`
    (Core 3.1.3.7 steps 6-8): alg_not_allowed, signature_invalid."""
    header = _header_of(raw)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise FederationRefused("alg_not_allowed", detail=f"ID token alg {alg!r}; allowed: {sorted(algorithms)}")
    key = _key_for(header, keys)
    try:
        token = jwt.decode(raw, key, algorithms=[alg])
    except (JoseError, ValueError, TypeError) as error:
        raise FederationRefused("signature_invalid", detail=f"ID token signature: {type(error).__name__}") from None
    if not isinstance(token.claims, dict):
        raise FederationRefused("signature_invalid", detail="ID token payload is not a JSON object")
    return token.claims


def _header_of(raw: str) -> dict:
    if not isinstance(raw, str) or raw.count(".") != 2:
        raise FederationRefused("signature_invalid", detail="the ID token is not a JWS in compact serialization")
    segment = raw.split(".", 1)[0]
    try:
        header = bounded_json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise FederationRefused("signature_invalid", detail="the ID token header is unreadable") from None
    if not isinstance(header, dict):
        raise FederationRefused("signature_invalid", detail="the ID token header is not a JSON object")
    return header


def _key_for(header: dict, keys: KeyLoader) -> Key:
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise FederationRefused("signature_invalid", detail="the ID token kid is not a string")
    parameters = {"alg": header["alg"]}
    for refresh in (False, True):
        try:
            return keys(refresh).get_by_kid(kid, parameters)
        except (JoseError, ValueError):
            continue
    raise FederationRefused("signature_invalid", detail=f"no key of the provider has kid {kid!r}")


def check_audience(claims: dict, client_id: str) -> None:
    """`aud` contains our client_id; `azp`, when present or when there are several audiences,
    equals it (Core 3.1.3.7 steps 3-5): aud_mismatch, azp_mismatch."""
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or client_id not in audiences:
        raise FederationRefused("aud_mismatch", detail=f"ID token aud {aud!r} does not contain our client_id")
    azp = claims.get("azp")
    if (azp is not None or len(audiences) > 1) and azp != client_id:
        raise FederationRefused("azp_mismatch", detail=f"ID token azp {azp!r} is not our client_id "
                                                       f"(aud has {len(audiences)} values)")


def check_times(claims: dict, now: float | None = None) -> None:
    """`exp` is in the future and `iat` is not, both within CLOCK_SKEW (Core 3.1.3.7 steps 9-10):
    expired, iat_invalid."""
    now = time.time() if now is None else now
    exp, iat = claims.get("exp"), claims.get("iat")
    if not _is_number(exp) or exp <= now - CLOCK_SKEW:
        raise FederationRefused("expired", detail=f"ID token exp {exp!r} is not in the future")
    if not _is_number(iat) or iat > now + CLOCK_SKEW:
        raise FederationRefused("iat_invalid", detail=f"ID token iat {iat!r} is missing or in the future")


def check_nonce(claims: dict, nonce: str) -> None:
    """`nonce` equals the one this sign-in sent (Core 3.1.3.7 step 11): nonce_mismatch."""
    value = claims.get("nonce")
    if not isinstance(value, str) or not hmac.compare_digest(value.encode(), nonce.encode()):
        raise FederationRefused("nonce_mismatch", detail="ID token nonce is not the one this sign-in sent")


def check_subject(claims: dict) -> str:
    """`sub`, a non-empty string of at most 255 ASCII characters (Core 2): sub_invalid."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255 or not sub.isascii():
        raise FederationRefused("sub_invalid", detail=f"ID token sub {sub!r} is not a valid subject")
    return sub


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
