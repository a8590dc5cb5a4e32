"""What a relying party reads off a token endpoint answer besides the token: its JSON encoding and
its request id."""
from __future__ import annotations

import json
import uuid

from tests.oidc.conftest import basic_auth


def test_token_answers_are_json_encoded_as_before(client, rp):
    """RFC 6749 5.1 / 5.2: the success and the error are application/json; the body is encoded as
    flask.json.dumps encodes it (sorted keys, ASCII, its separators) with its Content-Length."""
    issued = client.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=basic_auth(rp.client_id))
    refused = client.post("/oauth2/token", data={"grant_type": "password"}, headers=basic_auth(rp.client_id))
    assert (issued.status_code, refused.status_code) == (200, 400)
    assert refused.get_json()["error"] == "unsupported_grant_type"
    for response in (issued, refused):
        assert response.headers["Content-Type"] == "application/json"
        assert response.data == json.dumps(response.get_json(), sort_keys=True).encode()
        assert response.headers["Content-Length"] == str(len(response.data))


def test_a_request_without_an_id_gets_a_fresh_version_4_uuid(client, rp):
    """A request that sends no X-Request-ID gets a new random UUID (RFC 9562 5.4: version 4, variant
    10), lower-case canonical, a different one per request."""
    ids = [client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                       headers=basic_auth(rp.client_id)).headers["X-Request-ID"] for _ in range(50)]
    for request_id in ids:
        parsed = uuid.UUID(request_id)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, request_id)
    assert len(set(ids)) == len(ids)
