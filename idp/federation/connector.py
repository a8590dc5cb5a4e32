"""The connector contract every upstream kind implements (modelled on Dex's connector.CallbackConnector).

A connector turns "send the browser upstream" into a `LoginStart`, and the upstream's answer into an
`UpstreamIdentity`. It knows nothing of users, sessions or storage: what it must remember between
the two steps (nonce, PKCE verifier, SAML request id) it returns in `LoginStart.saved`, and the
federation views keep that server-side, bound to the browser and used once.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from idp.services.upstream_identity import UpstreamIdentity


class FederationRefused(Exception):
    """The upstream's answer is not accepted.

    `reason` is a short machine code for the audit log and tests (e.g. "state_mismatch",
    "iss_mismatch", "signature_invalid"); `message` is safe to show the user; `detail` is for the
    operator's log only.
    """

    def __init__(self, reason: str, message: str = "The sign-in with this provider could not be completed.",
                 detail: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.detail = detail


class UpstreamSettingsInvalid(Exception):
    """Saving an upstream's settings failed; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class UpstreamUrls:
    """This IdP's own endpoints for one upstream (all absolute, under ISSUER)."""

    login: str      # GET  /api/v1/auth/external/<slug>/login
    callback: str   # GET/POST /api/v1/auth/external/<slug>/callback (OAuth 2.0 / OIDC redirect_uri)
    metadata: str   # GET  /api/v1/auth/external/<slug>/metadata (SAML SP metadata; its URL is the entity ID)
    acs: str        # POST /api/v1/auth/external/<slug>/acs (SAML Assertion Consumer Service)
    slo: str        # GET/POST /api/v1/auth/external/<slug>/slo (SAML Single Logout)


@dataclass(frozen=True)
class UpstreamConfig:
    """What a connector is opened with: the upstream's validated settings and decrypted secrets,
    never the ORM row."""

    id: str
    slug: str
    kind: str
    display_name: str
    settings: dict
    secrets: dict
    scopes: tuple[str, ...] = ()
    email_domains: tuple[str, ...] = ()
    organization_id: str | None = None


@dataclass(frozen=True)
class LoginStart:
    """Where to send the browser, and what to keep until the upstream answers."""

    url: str
    saved: dict = field(default_factory=dict)


class CallbackConnector(Protocol):
    """A redirect-based upstream (OAuth 2.0, OIDC, SAML with HTTP-Redirect/HTTP-POST bindings)."""

    def begin(self, state: str, *, login_hint: str | None = None) -> LoginStart:
        """The upstream authorization (or AuthnRequest) URL carrying `state` (SAML: RelayState)."""
        ...

    def complete(self, params: Mapping[str, str], saved: dict | None) -> UpstreamIdentity:
        """Verify the upstream's answer (`params`: the callback's query or form) against `saved`
        (None for an unsolicited SAML response); FederationRefused when anything is off."""
        ...
