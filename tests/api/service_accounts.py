"""A service account's management token, as the management API tests obtain one."""
from __future__ import annotations

import base64

# The secret tests.factories gives every confidential client.
SECRET = "s3cret-client-secret"


def service_token(api, factories, scope: str, **client_fields) -> str:
    """A client_credentials access token (RFC 6749 4.4) of a new service-account client."""
    client = factories.client(grant_types=["client_credentials"], redirect_uris=[], scope=scope, **client_fields)
    basic = base64.b64encode(f"{client.client_id}:{SECRET}".encode()).decode()
    response = api.post("/oauth2/token", data={"grant_type": "client_credentials", "scope": scope},
                        headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]
