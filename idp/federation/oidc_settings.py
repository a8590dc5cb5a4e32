"""Checking the settings of an OpenID Connect upstream before they are saved.

Each check adds "field -> what is wrong" to an errors dict, so one save reports every problem at
once (UpstreamSettingsInvalid). The discovery checks then ask the provider itself.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from idp.federation.connector import UpstreamSettingsInvalid
from idp.federation.http import UpstreamHttp, UpstreamHttpError
from idp.federation.oidc_metadata import fetch_discovery, key_set

# Endpoints the connector calls or sends the browser to; each must pass the outbound guard.
CHECKED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint")


def refuse_unknown(settings: dict, known: set[str], errors: dict) -> None:
    """A setting this kind does not have is an error (a typo would otherwise be silently ignored)."""
    for name in sorted(set(settings) - known):
        errors[name] = "is not a setting of this kind of upstream"


def text_field(values: dict, name: str, errors: dict, *, required: bool = True) -> str | None:
    """A non-empty string without surrounding or inner whitespace."""
    value = values.get(name)
    if value is None or value == "":
        if required:
            errors[name] = "is required"
        return None
    if not isinstance(value, str) or value.strip() != value or any(ch.isspace() for ch in value):
        errors[name] = "must be a string without spaces"
        return None
    if len(value) > 1000:
        errors[name] = "is longer than 1000 characters"
        return None
    return value


def url_field(values: dict, name: str, http: UpstreamHttp, errors: dict) -> str | None:
    """An absolute http(s) URL without query or fragment (an issuer's shape, Discovery 1.0 section
    2) that the outbound guard allows: https and public in production."""
    value = text_field(values, name, errors)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        errors[name] = "must be an absolute https URL"
    elif parts.query or parts.fragment or "?" in value or "#" in value:
        errors[name] = "must not have a query or fragment"
    else:
        try:
            http.check(value, label=name)
            return value
        except UpstreamHttpError as error:
            errors[name] = f"is not allowed: {error}"
    return None


def bool_field(values: dict, name: str, errors: dict) -> bool | None:
    """An optional JSON boolean."""
    value = values.get(name)
    if value is not None and not isinstance(value, bool):
        errors[name] = "must be true or false"
        return None
    return value


def read_discovery(http: UpstreamHttp, url: str, field: str) -> dict:
    """The provider's current configuration at `url` (fresh, not cached), its endpoints allowed by
    the outbound guard and its key set usable; UpstreamSettingsInvalid({field: why}) otherwise."""
    try:
        document = fetch_discovery(http, url, fresh=True)
        for name in CHECKED_ENDPOINTS:
            if name in document:
                http.check(str(document[name]), label=f"the discovery document's {name}")
        key_set(http, document["jwks_uri"], fresh=True)
    except UpstreamHttpError as error:
        raise UpstreamSettingsInvalid({field: f"the provider's discovery at {url} is not usable: {error}"}) from None
    return document


def require_issuer(document: dict, expected: str, url: str, field: str = "issuer") -> None:
    """The discovered issuer is exactly the configured one (Discovery 1.0 section 4.3: prevents one
    provider impersonating another)."""
    if document["issuer"] != expected:
        raise UpstreamSettingsInvalid({field: f"the discovery document at {url} names the issuer "
                                              f"{document['issuer']!r}, not {expected!r}"})
