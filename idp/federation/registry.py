"""Upstream kinds by name: each kind validates its own settings and opens its connector.

A kind is an object (the module-level `KIND` of its module) with
- `validate(settings: dict, secrets: dict, http: UpstreamHttp) -> tuple[dict, dict]`: the settings and
  secrets as they will be stored (normalized, defaults filled in), or UpstreamSettingsInvalid naming
  each bad field; it may ask the upstream (discovery, SAML metadata) to check what it can;
- `open(config: UpstreamConfig, urls: UpstreamUrls, http: UpstreamHttp) -> CallbackConnector`;
- `SECRET_FIELDS`: the names of its write-only settings (kept encrypted, never returned);
- `label`: the sign-in button's wording, a format string that may use `{display_name}`
  ("Continue with Google"; the generic oidc kind's is "Continue with {display_name}"), read as
  `kind.label.format(display_name=upstream.display_name)`, and `icon`: its static SVG's name.
"""
from __future__ import annotations

import importlib

# Kind name -> the module that defines it (as its `KIND`).
KIND_MODULES = {
    "oidc": "idp.federation.oidc",
    "google": "idp.federation.google",
    "microsoft": "idp.federation.microsoft",
    "github": "idp.federation.github",
    "saml": "idp.federation.saml",
}


def kind_of(name: str):
    """The kind registered under `name`; KeyError for an unknown one."""
    return importlib.import_module(KIND_MODULES[name]).KIND
