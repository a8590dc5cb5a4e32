"""Client metadata rules (RFC 7591 2, OIDC Dynamic Client Registration 1.0 2, Back- and Front-Channel
Logout), one set for every surface that registers or changes a client: /oauth2/register and its
RFC 7592 configuration endpoint, and /api/v1/clients.

`validate_client_metadata` runs Authlib's metadata registries (with the provider's own supported
values, as its discovery document states them) and the rules of this server; a refusal is a
ValidationError naming the member, which each surface renders its own way (invalid_client_metadata,
or the envelope's 422).
"""
from __future__ import annotations

from urllib.parse import urlsplit

from authlib.oauth2.rfc7591 import ClientMetadataClaims as OAuthClientMetadata
from authlib.oidc.registration import ClientMetadataClaims as OIDCClientMetadata
from authlib.oidc.rpinitiated import ClientMetadataClaims as LogoutClientMetadata
from flask import current_app
from joserfc.errors import InvalidClaimError, JoseError

from idp.errors import ValidationError
from idp.services.client_logout_metadata import LogoutChannelMetadata, MetadataRefused

CLAIMS_CLASSES = [OAuthClientMetadata, OIDCClientMetadata, LogoutClientMetadata, LogoutChannelMetadata]

# Column sizes of OAuthClient: longer values are refused, never truncated.
LENGTH_LIMITS = {"client_name": 200, "scope": 1000, "jwks_uri": 500, "logo_uri": 500, "client_uri": 500,
                 "policy_uri": 500, "tos_uri": 500}
URI_LIMIT = 500
# URL-valued metadata (RFC 7591 2, OIDC Registration 2): the web pages the consent page links to,
# the logo it shows, and the key set URL (https only in production, checked again at fetch time).
URL_METADATA = ("client_uri", "policy_uri", "tos_uri", "logo_uri", "jwks_uri")


def refuse(name: str, message: str):
    """The ValidationError naming metadata member `name`."""
    return ValidationError(message, details={name: [message]})


def is_web_url(value) -> bool:
    """An absolute http(s) URL with a host and no whitespace (lowercase scheme, as the consent page
    links only values starting with "https://" or "http://")."""
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        return False
    if any(ch.isspace() for ch in value):
        return False
    try:
        return bool(urlsplit(value).hostname)
    except ValueError:
        return False


def validate_client_metadata(data: dict, server_metadata: dict) -> dict:
    """The registered metadata of `data` with RFC 7591 2's defaults (token_endpoint_auth_method), checked
    against `server_metadata` (the provider's discovery values) and this server's rules; ValidationError
    naming the first bad member otherwise. `scope` is left as given (each surface has its default)."""
    if not isinstance(data, dict):
        raise refuse("_body", "The request body must be a JSON object.")
    check_url_metadata(data)
    metadata = _through_registries(data, server_metadata)
    check_metadata(metadata)
    return metadata


def check_url_metadata(data: dict) -> None:
    """URL-valued metadata, when present, are http(s) URLs. Checked on the raw body, before the
    metadata registries (whose URL check accepts any scheme and fails on non-strings)."""
    for name in URL_METADATA:
        if data.get(name) not in (None, "") and not is_web_url(data[name]):
            raise refuse(name, f"{name} must be an absolute http or https URL.")


def _through_registries(data: dict, server_metadata: dict) -> dict:
    metadata: dict = {}
    for claims_class in CLAIMS_CLASSES:
        options = claims_class.get_claims_options(server_metadata) if hasattr(claims_class, "get_claims_options") else {}
        claims = claims_class(dict(data), {}, options, server_metadata)
        try:
            claims.validate()
        except MetadataRefused as error:
            raise refuse(error.name, error.description) from None
        except InvalidClaimError as error:
            raise refuse(error.claim, error.description) from None
        except JoseError as error:
            raise refuse("_body", error.description) from None
        except ValueError as error:
            # Authlib's RP-Initiated Logout registry (3.1: http post-logout URIs only for confidential clients)
            # raises a bare ValueError naming the member.
            if "post_logout_redirect_uris" not in str(error):
                raise
            raise refuse("post_logout_redirect_uris", "post_logout_redirect_uris must use https for a public "
                                                      "client (token_endpoint_auth_method none).") from None
        metadata.update(**claims.get_registered_claims())
    return metadata


def check_lengths(metadata: dict) -> None:
    """Refuse values longer than their columns (never truncate)."""
    for name, limit in LENGTH_LIMITS.items():
        if len(str(metadata.get(name) or "")) > limit:
            raise refuse(name, f"{name} is too long.")
    for name in ("redirect_uris", "post_logout_redirect_uris"):
        if any(len(uri) > URI_LIMIT for uri in metadata.get(name) or []):
            raise refuse(name, "A redirect URI is too long.")


def check_metadata(metadata: dict) -> None:
    """Rules beyond the registries: sizes, redirect URIs for code clients, keys for private_key_jwt."""
    check_lengths(metadata)
    grants = metadata.get("grant_types") or ["authorization_code"]
    if "authorization_code" in grants and not metadata.get("redirect_uris"):
        raise refuse("redirect_uris", "redirect_uris is required for the authorization_code grant.")
    if any("#" in uri for uri in metadata.get("redirect_uris") or []):
        raise refuse("redirect_uris", "redirect_uris must not contain a fragment.")
    method = metadata.get("token_endpoint_auth_method")
    if method == "private_key_jwt" and not (metadata.get("jwks") or metadata.get("jwks_uri")):
        raise refuse("token_endpoint_auth_method", "private_key_jwt needs jwks or jwks_uri.")
    if method == "none" and "client_credentials" in grants:
        raise refuse("grant_types", "A public client cannot use client_credentials.")


PROVIDER_METADATA = "client_metadata.provider_metadata"


def publish_provider_metadata(app, source) -> None:
    """The OpenID Provider names the source of its discovery document (a callable), so every surface
    checks metadata against the values discovery advertises without importing the provider."""
    app.extensions[PROVIDER_METADATA] = source


def provider_metadata() -> dict:
    """The provider's discovery document (OIDC Discovery 1.0 3), as published at start-up."""
    return current_app.extensions[PROVIDER_METADATA]()
