"""Dynamic client registration (RFC 7591) behind an initial access token, and client configuration
(RFC 7592: read, update, delete) behind the registration access token."""
from __future__ import annotations

from authlib.consts import default_json_headers
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint, InvalidClientMetadataError
from authlib.oauth2.rfc7592 import ClientConfigurationEndpoint
from flask import current_app

from idp.errors import ValidationError
from idp.models import InitialAccessToken, OAuthClient, SessionKind
from idp.oidc.clients import load_client
from idp.oidc.discovery import openid_configuration
from idp.oidc.scopes import SUPPORTED_SCOPES
from idp.security.secrets import new_token
from idp.services import client_metadata as metadata_rules
from idp.services import client_registration as registry
from idp.services import sessions
NO_SECRET_METHODS = ("none", "private_key_jwt")
# A client registered without `scope` (OIDC Dynamic Registration 1.0 has no such member) may ask for
# the standard scopes (OIDC Core 5.4, 11); `organizations` releases memberships and must be asked for.
WITHHELD_FROM_DEFAULT_SCOPE = ("organizations",)
DEFAULT_SCOPE = " ".join(scope for scope in SUPPORTED_SCOPES if scope not in WITHHELD_FROM_DEFAULT_SCOPE)


def bearer(request) -> str | None:
    """The bearer token of the Authorization header, or None."""
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


REALM = "registration"
# Error descriptions go into WWW-Authenticate too: no double quote or backslash (RFC 6750 3).
INITIAL_TOKEN_NEEDED = ("Registration needs an initial access token as a Bearer token. An administrator of this "
                        "server prints a single-use one with `flask clients initial-token`.")
INITIAL_TOKEN_INVALID = ("The initial access token is unknown, expired or already used. An administrator of this "
                         "server prints a new single-use one with `flask clients initial-token`.")
REGISTRATION_TOKEN_NEEDED = ("The client configuration endpoint needs the registration access token that the "
                             "registration response returned, as a Bearer token.")
REGISTRATION_TOKEN_INVALID = "The registration access token is not valid for this client."


class BearerTokenRequired(OAuth2Error):
    """RFC 6750 3.1: a request without credentials gets 401 and a Bearer challenge with no error code;
    the body only says which token is needed."""

    status_code = 401

    def get_body(self) -> list:
        return [("error_description", self.description)]

    def get_headers(self) -> list:
        return [*default_json_headers, ("WWW-Authenticate", f'Bearer realm="{REALM}"')]


def require_bearer(request, missing: str) -> str:
    """The request's bearer token; BearerTokenRequired (described by `missing`) when it has none."""
    token = bearer(request)
    if token is None:
        raise BearerTokenRequired(description=missing)
    return token


def require_json_object(request) -> None:
    """RFC 7591 3.1: the body must be a JSON object of metadata."""
    if not isinstance(request.payload.data, dict):
        raise InvalidClientMetadataError("The request body must be a JSON object.")


def validated_metadata(request) -> dict:
    """The request's client metadata through the rules every surface shares (idp.services.client_metadata);
    the same for registration (RFC 7591 3.1) and update (RFC 7592 2.2). A refusal is RFC 7591 3.2.2's
    invalid_client_metadata, described as the management API describes it."""
    require_json_object(request)
    try:
        metadata = metadata_rules.validate_client_metadata(request.payload.data, openid_configuration())
    except ValidationError as error:
        raise InvalidClientMetadataError(error.message) from None
    metadata["scope"] = metadata.get("scope") or DEFAULT_SCOPE
    return metadata


class OpenRegistration:
    """The credential of a registration when OPEN_CLIENT_REGISTRATION is on (no token needed)."""


class AdminRegistration:
    """The credential of a registration made with a platform admin's API session token."""

    def __init__(self, user_id: str):
        self.user_id = user_id


def registration_credential(token: str | None):
    """An initial access token, or (admin-only use) a platform admin's live API session token."""
    initial = registry.find_initial_access_token(token)
    if initial is not None:
        return initial
    session = sessions.find_live_session(token, kind=SessionKind.API)
    return AdminRegistration(session.user_id) if session is not None and session.user.is_admin else None


class ClientRegistration(ClientRegistrationEndpoint):
    def authenticate_token(self, request):
        """RFC 7591 3: the initial access token is an OAuth 2.0 bearer token, refused per RFC 6750 3.1."""
        if current_app.config["OPEN_CLIENT_REGISTRATION"]:
            return OpenRegistration()
        credential = registration_credential(require_bearer(request, INITIAL_TOKEN_NEEDED))
        if credential is None:
            raise InvalidTokenError(description=INITIAL_TOKEN_INVALID, realm=REALM)
        return credential

    def extract_client_metadata(self, request) -> dict:
        require_json_object(request)
        if not request.payload.data:
            raise InvalidRequestError()
        return validated_metadata(request)

    def get_server_metadata(self) -> dict:
        return openid_configuration()

    def generate_client_id(self, request) -> str:
        return "dyn-" + new_token(16)

    def generate_client_secret(self, request) -> str | None:
        method = (request.payload.data or {}).get("token_endpoint_auth_method", "client_secret_basic")
        return None if method in NO_SECRET_METHODS else new_token(32)

    def save_client(self, client_info: dict, client_metadata: dict, request) -> OAuthClient:
        credential = request.credential
        initial = credential if isinstance(credential, InitialAccessToken) else None
        actor = credential.user_id if isinstance(credential, AdminRegistration) else None
        client, request.registration_token = registry.register_client(
            client_metadata, client_info["client_id"], client_info["client_secret"], initial, actor)
        request.client = client
        return client

    def generate_client_registration_info(self, client: OAuthClient, request) -> dict:
        return {"registration_client_uri": f"{current_app.config['ISSUER']}/oauth2/register/{client.client_id}",
                "registration_access_token": request.registration_token}

    def create_registration_response(self, request):
        """RFC 7591 3.2.1: the response holds all registered metadata, the defaults provisioned here too."""
        status, body, headers = super().create_registration_response(request)
        body = {**body, **request.client.client_metadata}
        return status, {k: v for k, v in body.items() if v is not None}, headers


class RegistrationAccess:
    """The registration access token, valid for one client only."""

    def __init__(self, client: OAuthClient, token: str):
        self.client, self.token = client, token

    def check_client(self, client: OAuthClient) -> bool:
        return client.id == self.client.id


class ClientConfiguration(ClientConfigurationEndpoint):
    def authenticate_token(self, request) -> RegistrationAccess:
        """RFC 7592 2.1-2.3: a token that is not the registration access token of the client in the URL
        (wrong, of another client, of a deleted one) is 401 invalid_token, the same answer whether or not
        that client exists."""
        token = require_bearer(request, REGISTRATION_TOKEN_NEEDED)
        client = registry.find_by_registration_token(token)
        if client is None or client.client_id != configured_client_id(request):
            raise InvalidTokenError(description=REGISTRATION_TOKEN_INVALID, realm=REALM)
        return RegistrationAccess(client, token)

    def authenticate_client(self, request) -> OAuthClient | None:
        return load_client(configured_client_id(request))

    def revoke_access_token(self, request, token) -> None:
        """The token names an existing client by construction; nothing to revoke here."""

    def check_permission(self, client: OAuthClient, request) -> bool:
        return client.registration_access_token_hash is not None

    def extract_client_metadata(self, request) -> dict:
        return validated_metadata(request)

    def introspect_client(self, client: OAuthClient) -> dict:
        return {**client.client_info, **client.client_metadata, "client_secret_expires_at": 0}

    def generate_client_registration_info(self, client: OAuthClient, request) -> dict:
        return {"registration_client_uri": f"{current_app.config['ISSUER']}/oauth2/register/{client.client_id}",
                "registration_access_token": request.credential.token}

    def delete_client(self, client: OAuthClient, request) -> None:
        registry.deregister_client(client)

    def update_client(self, client: OAuthClient, client_metadata: dict, request) -> OAuthClient:
        registry.update_client(client, client_metadata)
        return client

    def get_server_metadata(self) -> dict:
        return openid_configuration()


def configured_client_id(request) -> str:
    """The client_id in the client configuration endpoint's URL (RFC 7592 2)."""
    return request.uri.split("?")[0].rstrip("/").rsplit("/", 1)[-1]


def register_registration_endpoints(server) -> None:
    """Register RFC 7591 registration and RFC 7592 configuration on the server."""
    server.register_endpoint(ClientRegistration)
    server.register_endpoint(ClientConfiguration)
