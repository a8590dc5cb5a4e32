"""Service accounts and their management tokens, as the management API tests obtain them."""
from __future__ import annotations

import base64

from idp.models import OAuthClient

# The secret tests.factories gives every confidential client.
SECRET = "s3cret-client-secret"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def service_account(factories, scope: str, **client_fields) -> OAuthClient:
    """A confidential client_credentials client (what a platform admin registers as a service account);
    `organization_id` makes it an organization's."""
    return factories.client(grant_types=["client_credentials"], redirect_uris=[], scope=scope, **client_fields)


def token_response(api, client: OAuthClient, **data):
    """POST /oauth2/token with client_credentials for `client` (RFC 6749 4.4.2), its secret in HTTP Basic."""
    basic = base64.b64encode(f"{client.client_id}:{SECRET}".encode()).decode()
    return api.post("/oauth2/token", data={"grant_type": "client_credentials", **data},
                    headers={"Authorization": f"Basic {basic}"})


def access_token_of(api, client: OAuthClient, **data) -> str:
    """The access token `client` is granted (`scope`, `resource` as given, RFC 6749 4.4.2, RFC 8707 2)."""
    response = token_response(api, client, **data)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def service_token(api, factories, scope: str, **client_fields) -> str:
    """A client_credentials access token (RFC 6749 4.4) of a new service-account client granted `scope`."""
    return access_token_of(api, service_account(factories, scope, **client_fields), scope=scope)


def service_headers(api, factories, scope: str, **client_fields) -> dict:
    """Bearer headers of service_token."""
    return bearer(service_token(api, factories, scope, **client_fields))
