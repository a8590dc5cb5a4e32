"""Assertions on the seed's response envelope, shared by the API tests."""


def assert_error(response, code: int, error_type: str) -> dict:
    """The response is an error envelope with this status and type, echoing its request id."""
    body = response.get_json()
    assert response.status_code == code, body
    assert body["success"] is False and body["code"] == code and body["error"]["type"] == error_type
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body
