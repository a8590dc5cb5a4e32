"""The client credentials grant (RFC 6749 4.4): confidential clients only, no refresh token.

A client granted management scopes is a service account: its token (sub = client_id) is for the
management API (RFC 9068 2.2 `aud` = API_AUDIENCE)."""
from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidScopeError, UnauthorizedClientError, grants

from idp.oidc.client_auth import CONFIDENTIAL_AUTH_METHODS
from idp.oidc.resources import requested_resource, scopes_for_resource
from idp.oidc.tokens import GrantContext, issue_tokens

# Scopes about an end user mean nothing without one.
USER_ONLY_SCOPES = {"openid", "offline_access", "profile", "email", "phone", "address", "organizations"}


def machine_scopes(client) -> list[str]:
    """The client's scopes that make sense without an end user."""
    return [s for s in client.scopes if s not in USER_ONLY_SCOPES]


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_token_request(self):
        """RFC 6749 4.4.2 / 3.3: the scope must be within the client's non-user scopes."""
        client = self.authenticate_token_endpoint_client()
        if client.is_public or not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use 'grant_type=client_credentials'.")
        self.request.client = client
        allowed = machine_scopes(client)
        requested = (self.request.payload.scope or "").split()
        if any(scope not in allowed for scope in requested):
            # A management scope, too, only when its registration has it: only a platform admin
            # puts one there.
            raise InvalidScopeError()
        # RFC 8707 2: without a scope, a named resource selects the client's scopes for it.
        self.request.scope = " ".join(requested or scopes_for_resource(allowed, requested_resource()))

    def create_token_response(self):
        client = self.request.client
        # Not audited per token: machine tokens are high-volume and fully described by the client's
        # own configuration; refusals are audited by the server's error handler.
        token = issue_tokens(client, None, self.request.scope, GrantContext(), include_refresh_token=False)
        return 200, token, self.TOKEN_RESPONSE_HEADER
