"""OIDC checks on an authorization request, run after Authlib has validated client, redirect URI,
response type and scope; each raises the spec's error, which goes back to the redirect URI."""
from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import current_app, g
from joserfc import jwt
from joserfc.errors import JoseError

from idp.oidc.authorization_bounds import check_parameter_lengths, check_stored_size
from idp.oidc.claims import parse_claims_parameter
from idp.oidc.responses import RESPONSE_MODES

PROMPT_VALUES = ("none", "login", "consent", "select_account")


def check_response_mode(data: dict) -> None:
    """OAuth 2.0 Multiple Response Types 2.1: query or form_post only."""
    mode = data.get("response_mode")
    if mode is not None and mode not in RESPONSE_MODES:
        raise InvalidRequestError(f"Unsupported 'response_mode'; use one of: {', '.join(RESPONSE_MODES)}.")


def check_prompt(data: dict) -> None:
    """OIDC Core 3.1.2.1: known values only; `none` with any other value is an error."""
    prompts = data.get("prompt", "").split()
    if any(p not in PROMPT_VALUES for p in prompts):
        raise InvalidRequestError("Unsupported 'prompt' value.")
    if "none" in prompts and len(prompts) > 1:
        raise InvalidRequestError("'prompt=none' cannot be combined with other values.")


MAX_AGE_LIMIT = 10 * 365 * 86400


def check_max_age(data: dict) -> None:
    """OIDC Core 3.1.2.1: max_age is a non-negative number of seconds."""
    raw = str(data.get("max_age", "0"))
    if not raw.isdigit() or int(raw) > MAX_AGE_LIMIT:
        raise InvalidRequestError("'max_age' must be a non-negative integer of seconds.")


def check_claims_parameter(data: dict) -> None:
    """OIDC Core 5.5: the claims parameter is a JSON object of objects."""
    _claims_request(data)


def _once_per_request(kind: str, raw, compute):
    """`compute(raw)`, worked out once per request: the flow reads the claims parameter and the
    id_token_hint at several steps, and the hint's signature check is an RSA/EC verification."""
    if not isinstance(raw, str):  # a request object's member may be JSON already
        return compute(raw)
    memo = g.setdefault("_authorization_checks", {})
    if (kind, raw) not in memo:
        memo[(kind, raw)] = compute(raw)
    return memo[(kind, raw)]


def _claims_request(data: dict) -> dict | None:
    return _once_per_request("claims", data.get("claims"), parse_claims_parameter)


def _id_token_claim_request(data: dict, name: str) -> dict:
    """The claims parameter's request for ID token claim `name` ({} when absent or null)."""
    claims = _claims_request(data) or {}
    request = (claims.get("id_token") or {}).get(name)
    return request if isinstance(request, dict) else {}


def essential_acr_values(data: dict) -> list[str]:
    """OIDC Core 5.5.1.1: the acr values an essential `acr` claim request demands (empty: none)."""
    request = _id_token_claim_request(data, "acr")
    if request.get("essential") is not True:
        return []
    values = request.get("values") if "values" in request else request.get("value")
    values = values if isinstance(values, list) else [values]
    return [str(v) for v in values if v is not None]


def requested_subject(data: dict) -> str | None:
    """OIDC Core 5.5.1: the `sub` value a claims request names for the ID token, if any."""
    value = _id_token_claim_request(data, "sub").get("value")
    return str(value) if value is not None else None


def id_token_hint_subject(data: dict) -> str | None:
    """OIDC Core 3.1.2.1: the `sub` of an ID token this issuer signed (it may have expired)."""
    hint = data.get("id_token_hint")
    if not hint:
        return None
    return _once_per_request("id_token_hint", hint, _hinted_subject)


def _hinted_subject(hint: str) -> str:
    keys = current_app.extensions["oidc"]["keys"]
    try:
        claims = jwt.decode(hint, keys.verification_keyset(), algorithms=["RS256", "ES256"]).claims
    except (JoseError, ValueError):
        raise InvalidRequestError("'id_token_hint' is not an ID token issued here.") from None
    if claims.get("iss") != current_app.config["ISSUER"] or not claims.get("sub"):
        raise InvalidRequestError("'id_token_hint' is not an ID token issued here.")
    return claims["sub"]


CHECKS = (check_parameter_lengths, check_stored_size, check_response_mode, check_prompt, check_max_age,
          check_claims_parameter, id_token_hint_subject)


class AuthorizationChecks:
    """Grant extension running CHECKS once Authlib has a trusted redirect URI."""

    def __call__(self, grant) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.run)

    def run(self, grant, redirect_uri) -> None:
        data = grant.request.payload.data
        for check in CHECKS:
            check(data)
