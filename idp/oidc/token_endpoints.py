"""Introspection (RFC 7662) and revocation (RFC 7009) on Authlib's endpoints."""
from __future__ import annotations

from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import current_app

from idp.models import AccessToken, RefreshToken
from idp.oidc.bearer import find_access_token
from idp.oidc.client_auth import AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from idp.services import audit
from idp.services import tokens as token_records
from idp.services.management_scopes import audience_for_scope


def find_token(token: str, hint: str | None) -> AccessToken | RefreshToken | None:
    """The access-token record or refresh token behind `token`, trying the hinted kind first."""
    lookups = [lambda: find_access_token(token), lambda: token_records.find_refresh_token(token)]
    if hint == "refresh_token":
        lookups.reverse()
    for lookup in lookups:
        found = lookup()
        if found is not None:
            return found
    return None


class TokenIntrospection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def check_permission(self, token, client, request) -> bool:
        """A client may introspect the tokens issued to it; any other token reads inactive."""
        return token.check_client(client)

    def introspect_token(self, token) -> dict:
        """RFC 7662 2.2 members for an active token."""
        user = token.user
        body = {"active": True, "scope": token.scope, "client_id": token.client.client_id,
                "token_type": "Bearer" if isinstance(token, AccessToken) else "refresh_token",
                "exp": int(token.expires_at.timestamp()), "iat": int(token.issued_at.timestamp()),
                "sub": user.subject if user else token.client.client_id, "iss": current_app.config["ISSUER"]}
        if isinstance(token, AccessToken):
            # The same audience the JWT carries (RFC 9068 2.2): API_AUDIENCE for management scopes.
            body.update(jti=token.jti, aud=audience_for_scope(token.scope))
        return body


class TokenRevocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def revoke_token(self, token, request) -> None:
        """RFC 7009 2.1: a refresh token takes its grant's access tokens with it.

        Authlib calls this only for a token of the authenticated client (`request.client`).
        """
        if isinstance(token, RefreshToken):
            token_records.revoke_refresh_token(token)
        else:
            token_records.revoke_access_token(token)
        audit.record("oauth.token_revoked", actor_user_id=token.user_id, target_type="client",
                     target_id=request.client.client_id, details={"token_type": token.token_type_hint})


def register_token_endpoints(server) -> None:
    """Register introspection and revocation on the server."""
    server.register_endpoint(TokenIntrospection)
    server.register_endpoint(TokenRevocation)
