"""Client authentication at the token, introspection and revocation endpoints.

client_secret_basic / client_secret_post / none come from Authlib (secrets checked with salted
SHA-256 in microseconds, never bcrypt); private_key_jwt (RFC 7523 2.2, OIDC Core 9) is added here,
its assertion `jti` refused on replay through the shared replay cache.
"""
from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import current_app, g
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.models import OAuthClient
from idp.oidc.client_jwks import JwksFetchError, fetch_jwks, forget_jwks
from idp.services.replay import remember_once

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
ASSERTION_SIGNING_ALGS = ["RS256", "ES256"]


def fetch_client_jwks(client: OAuthClient) -> dict:
    """The client's public keys: registered `jwks`, else fetched from `jwks_uri`."""
    if client.jwks:
        return client.jwks
    if not client.jwks_uri:
        raise InvalidClientError(description="The client has no registered keys.")
    try:
        return fetch_jwks(client.jwks_uri)
    except JwksFetchError as error:
        current_app.logger.warning("jwks_uri of client %s refused or unreachable: %s", client.client_id, error)
        raise InvalidClientError(description="The client's keys could not be retrieved.") from None


class PrivateKeyJWT(JWTBearerClientAssertion):
    """private_key_jwt: a JWT signed with the client's key, aud = the token endpoint or issuer."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self) -> list[str]:
        issuer = current_app.config["ISSUER"]
        return [issuer, f"{issuer}/oauth2/token", f"{issuer}/oauth2/introspect", f"{issuer}/oauth2/revoke"]

    def validate_jti(self, claims, jti) -> bool:
        ttl = max(int(claims.get("exp", 0)) - int(claims.get("iat", 0) or 0), 60) + self.leeway
        return remember_once(f"client-assertion:{claims['sub']}:{jti}", min(ttl, 3600))

    def resolve_client_public_key(self, client: OAuthClient):
        g.assertion_jwks_uri = None if client.jwks else client.jwks_uri
        try:
            return KeySet.import_key_set(fetch_client_jwks(client))
        except (ValueError, KeyError, TypeError):
            raise InvalidClientError(description="The client's registered keys are not valid.") from None

    def process_assertion_claims(self, assertion, resolve_key):
        """RFC 7523 3: verify with the client's keys (RS256/ES256 only), then the claims and jti."""
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_SIGNING_ALGS)
        except JoseError as error:
            if g.get("assertion_jwks_uri"):
                forget_jwks(g.assertion_jwks_uri)
            raise InvalidClientError(description="The client assertion signature is not valid.") from error
        self.verify_claims(token.claims)
        return token.claims


def register_client_auth(server) -> None:
    """Add private_key_jwt to the server's client authentication methods."""
    server.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT(leeway=30))
