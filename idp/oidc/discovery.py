"""Provider metadata (OIDC Discovery 1.0 3, RFC 8414 2): every advertised value works; and issuer
discovery by WebFinger (OIDC Discovery 1.0 2, RFC 7033)."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app

from idp.oidc.client_auth import AUTH_METHODS, ASSERTION_SIGNING_ALGS, CONFIDENTIAL_AUTH_METHODS
from idp.oidc.keys import PublishedDocument
from idp.oidc.request_objects import REQUEST_OBJECT_ALGS
from idp.oidc.responses import RESPONSE_MODES
from idp.oidc.scopes import SUPPORTED_SCOPES, all_claims

ENDPOINT_PATHS = {
    "authorization_endpoint": "/oauth2/authorize",
    "token_endpoint": "/oauth2/token",
    "userinfo_endpoint": "/oauth2/userinfo",
    "jwks_uri": "/oauth2/jwks",
    "introspection_endpoint": "/oauth2/introspect",
    "revocation_endpoint": "/oauth2/revoke",
    "end_session_endpoint": "/oauth2/logout",
    "registration_endpoint": "/oauth2/register",
}


def authorization_server_metadata() -> dict:
    """RFC 8414 metadata; the OIDC document adds the OpenID members to it."""
    issuer = current_app.config["ISSUER"]
    keys = current_app.extensions["oidc"]["keys"]
    return {
        "issuer": issuer,
        **{name: issuer + path for name, path in ENDPOINT_PATHS.items()},
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": list(RESPONSE_MODES),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_SIGNING_ALGS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_SIGNING_ALGS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_SIGNING_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "id_token_signing_alg_values_supported": keys.active_algs(),
    }


def openid_configuration() -> dict:
    """OIDC Discovery 1.0 3."""
    return {
        **authorization_server_metadata(),
        "subject_types_supported": ["public"],
        "claims_supported": all_claims(),
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": True,
        "request_parameter_supported": True,
        "request_uri_parameter_supported": False,
        "request_object_signing_alg_values_supported": REQUEST_OBJECT_ALGS,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        # Back-Channel Logout 1.0 2.1 and Front-Channel Logout 1.0 3; ID tokens carry `sid`.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
    }


class PublishedMetadata:
    """Both metadata documents as bytes with their ETags, built once per configuration (one app) and
    again when the signing keys change: `id_token_signing_alg_values_supported` names the active
    algorithms (OIDC Discovery 1.0 3), so a rotation that adds or drops one shows at once. Built in
    `app`'s context: published_documents asks for them outside any Flask context."""

    def __init__(self, app, keys):
        self._app = app
        self._keys = keys
        self._built: tuple[tuple, PublishedDocument, PublishedDocument] | None = None

    def openid_configuration(self) -> PublishedDocument:
        return self._current()[1]

    def authorization_server_metadata(self) -> PublishedDocument:
        return self._current()[2]

    def _current(self) -> tuple[tuple, PublishedDocument, PublishedDocument]:
        version = self._keys.version()
        built = self._built
        if built is None or built[0] != version:
            with self._app.app_context():
                built = (version, PublishedDocument.of(openid_configuration()),
                         PublishedDocument.of(authorization_server_metadata()))
            self._built = built
        return built


ISSUER_REL = "http://openid.net/specs/connect/1.0/issuer"


def _resource_host(resource: str) -> str | None:
    """The host (and port) a WebFinger resource names: `acct:user@host` or an http(s) URL."""
    if resource.startswith("acct:"):
        _, at, host = resource[5:].rpartition("@")
        return host.lower() if at and host else None
    parts = urlsplit(resource)
    return parts.netloc.lower() if parts.scheme in ("https", "http") and parts.netloc else None


def webfinger(resource: str, rels: list[str]) -> dict | None:
    """OIDC Discovery 1.0 2.1-2.2: the issuer for a resource on this IdP's host, else None (404).

    Every account name on this host gets the same answer, so the endpoint reveals nothing about
    which accounts exist. `rel` filters the links (RFC 7033 4.3).
    """
    issuer = current_app.config["ISSUER"]
    if _resource_host(resource) != urlsplit(issuer).netloc.lower():
        return None
    links = [{"rel": ISSUER_REL, "href": issuer}]
    return {"subject": resource, "links": [link for link in links if not rels or link["rel"] in rels]}
