"""Bounds on an authorization request: which parameters a pending request keeps, and how long each may be.

Only the parameters this server reads are kept (OIDC Core 3.1.2.1: any other is ignored, so it is
never stored), each within PARAMETER_LIMITS; a longer value is refused, never truncated, and never
echoed. How it is refused depends on whether the value would travel back:

- `client_id`, `redirect_uri`, `response_type` and `state` decide where the answer goes or are echoed
  in it (every redirect carries the state, RFC 6749 4.1.2.1; Authlib's unsupported_response_type and
  unauthorized_client descriptions name the response_type). An over-long one gets the HTML error
  page (400), never a redirect: checked on the raw request and again on a request object's members.
- every other one is `invalid_request` at the redirect URI (RFC 6749 4.1.2.1, OIDC Core 3.1.2.6), its
  description naming the parameter only, with the state (already known to be within bounds).
"""
from __future__ import annotations

import json
from collections.abc import Mapping

from authlib.oauth2.rfc6749 import InvalidRequestError

# The kept parameters and the longest value (characters) accepted for each.
PARAMETER_LIMITS = {
    # RFC 6749 4.1.1
    "response_type": 64,    # "code" is the only type served; echoed in Authlib's error descriptions
    "client_id": 100,       # the oauth_clients.client_id column
    "redirect_uri": 500,    # registration accepts redirect URIs up to 500; the code's column
    "scope": 1000,          # the code's scope column; registration caps a client's scope at 1000 too
    "state": 2048,
    # RFC 7636 4.3: a challenge is 43 to 128 characters; "S256" is the only method
    "code_challenge": 128,
    "code_challenge_method": 10,
    # OIDC Core 3.1.2.1, 5.5
    "nonce": 500,           # the code's nonce column
    "response_mode": 32,
    "prompt": 64,
    "max_age": 10,          # MAX_AGE_LIMIT (ten years of seconds) has 9 digits
    "ui_locales": 200,
    "login_hint": 254,      # the longest e-mail address (RFC 5321 4.5.3.1)
    "id_token_hint": 16384,
    "acr_values": 500,
    "claims": 8192,
    # this server's home-realm hint: an upstream's slug (the upstreams.slug column)
    "idp_hint": 64,
}
# Refused with the HTML page rather than at the redirect URI (see above).
ECHOED_PARAMETERS = ("client_id", "redirect_uri", "response_type", "state")
# The kept parameters as stored (JSON), whatever their characters escape to.
MAX_STORED_BYTES = 32 * 1024
# A request object (OIDC Core 6.1) is read, verified and merged, never stored; its members are bounded
# as above once merged. 64 KiB holds every kept member at its limit, signed and base64url-encoded.
REQUEST_OBJECT_LIMIT = 64 * 1024


def _too_long(data: Mapping, names) -> str | None:
    return next((name for name in names if len(str(data.get(name) or "")) > PARAMETER_LIMITS[name]), None)


def check_echoed_parameters(data: Mapping) -> None:
    """The values that route or are echoed in the answer are within bounds, else the HTML page."""
    name = _too_long(data, ECHOED_PARAMETERS)
    if name is not None:
        raise InvalidRequestError(f"The '{name}' parameter is too long.", redirect_uri=None)


def check_parameter_lengths(data: Mapping) -> None:
    """Every kept parameter is within its limit (reported at the redirect URI)."""
    name = _too_long(data, PARAMETER_LIMITS)
    if name is not None:
        raise InvalidRequestError(f"'{name}' is too long.")


def check_stored_size(data: Mapping) -> None:
    """What a pending request would store stays under MAX_STORED_BYTES."""
    if stored_size(kept_parameters(data)) > MAX_STORED_BYTES:
        raise InvalidRequestError("The authorization request is too large.")


def kept_parameters(data: Mapping) -> dict[str, str]:
    """The parameters this server reads, out of everything the request carried."""
    return {name: str(data[name]) for name in PARAMETER_LIMITS if data.get(name) is not None}


def stored_size(params: Mapping) -> int:
    """Bytes of `params` as the JSON column stores them."""
    return len(json.dumps(params).encode("utf-8"))
