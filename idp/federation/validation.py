"""Checking an upstream's settings before they are saved: the outbound guard on every URL, then the
kind's own validate() (discovery reachable and its issuer equal, SAML metadata parsed ...).

This is the `validate` that services.upstream_admin is handed: it answers the settings and secrets as
stored, or raises the domain's ValidationError whose details map each field to what is wrong, which
the API renders as its 422 envelope and the environment bootstrap logs.
"""
from __future__ import annotations

from flask import current_app

from idp.errors import ValidationError
from idp.federation.connector import UpstreamSettingsInvalid
from idp.federation.connectors import upstream_http
from idp.federation.http import UpstreamHttp, UpstreamHttpError
from idp.federation.registry import kind_of

# Request fields that hold a URL this IdP requests or sends browsers to (issue 10: in production each
# must be https and resolve to public addresses; reuse of the jwks_uri SSRF guard).
URL_FIELDS = ("issuer", "authority", "base_url", "api_url", "metadata_url", "sso_url", "slo_url")
INVALID = "The upstream's settings are not valid."


def validate_settings(kind: str, settings: dict, secrets: dict) -> tuple[dict, dict]:
    """The settings and secrets of a `kind` upstream as they will be stored; ValidationError naming
    each bad field otherwise."""
    try:
        upstream_kind = kind_of(kind)
    except (KeyError, ImportError, AttributeError):
        current_app.logger.exception("upstream kind %r cannot be loaded", kind)
        raise ValidationError("This kind of upstream is not available.",
                              details={"kind": [f"The {kind!r} kind is not available on this server."]}) from None
    http = upstream_http()
    check_urls(settings, http)
    try:
        return upstream_kind.validate(dict(settings), dict(secrets), http)
    except UpstreamSettingsInvalid as error:
        raise ValidationError(INVALID, details={name: [str(why)] for name, why in error.errors.items()}) from None
    except UpstreamHttpError as error:
        raise ValidationError(INVALID, details={"kind": [f"The upstream could not be checked: {error}"]}) from None


def check_urls(settings: dict, http: UpstreamHttp) -> None:
    """Every URL-valued setting passes the outbound guard: https and public addresses unless
    ALLOW_PRIVATE_UPSTREAM_URLS, whether or not the kind itself requests it."""
    errors = {}
    for name in URL_FIELDS:
        value = settings.get(name)
        if isinstance(value, str):
            try:
                http.check(value, label=name)
            except UpstreamHttpError as error:
                errors[name] = [f"is not allowed: {error}"]
    if errors:
        raise ValidationError(INVALID, details=errors)
