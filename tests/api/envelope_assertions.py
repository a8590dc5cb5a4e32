"""Assertions on the seed's response envelope, shared by the API tests."""


def assert_error(response, code: int, error_type: str) -> dict:
    """The response is an error envelope with this status and type, echoing its request id."""
    body = response.get_json()
    assert response.status_code == code, body
    assert body["success"] is False and body["code"] == code and body["error"]["type"] == error_type
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


SUCCESS_KEYS = {"version", "success", "code", "message", "request_id", "data", "meta"}


def assert_success(response, code: int = 200) -> dict:
    """The response is a success envelope with this status, `meta` present, echoing its request id."""
    body = response.get_json()
    assert response.status_code == code, body
    assert set(body) == SUCCESS_KEYS and body["success"] is True and body["code"] == code
    assert isinstance(body["meta"], dict) and body["request_id"] == response.headers["X-Request-ID"]
    return body
