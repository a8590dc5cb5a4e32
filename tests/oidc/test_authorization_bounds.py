"""Bounds on authorization requests: what a pending request stores, over-long values, creation per address."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
import time_machine
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import AuthorizationRequest
from idp.oidc.authorization_bounds import MAX_STORED_BYTES, PARAMETER_LIMITS
from tests.oidc.conftest import REDIRECT_URI, query_of
from tests.web.helpers import submit

HUGE_STATE = "s" * 900_000
ELSEWHERE = {"REMOTE_ADDR": "203.0.113.7"}


def unsigned(claims: dict) -> str:
    """An unsigned request object (OIDC Core 6.1, alg none)."""
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none'})}.{part(claims)}."


def stored_rows(app) -> list[dict]:
    with app.app_context():
        return [row.params for row in db.session.scalars(select(AuthorizationRequest))]


def pending_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuthorizationRequest))


def assert_refused_by_page(response, value: str) -> None:
    """An HTML 400 page naming invalid_request; no redirect and no trace of the value."""
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and "Location" not in response.headers
    assert "text/html" in response.content_type and "invalid_request" in body
    assert value[:200] not in body


def assert_invalid_request_at_redirect(response, description: str, value: str) -> None:
    location = response.headers["Location"]
    query = query_of(location)
    assert response.status_code == 302 and location.startswith(REDIRECT_URI + "?")
    assert query["error"] == "invalid_request" and query["error_description"] == description
    assert query["state"] == "st-123" and value[:200] not in location


@pytest.fixture
def third_party(flow, factories):
    """The flow with a third-party client, so the request waits for sign-in and then consent."""
    flow.rp = factories.client(redirect_uris=[REDIRECT_URI])
    return flow


def test_unknown_parameters_are_not_stored_and_the_flow_completes(third_party, user, app):
    """OIDC Core 3.1.2.1: unrecognised parameters are ignored, so 20 of 100 KB each store nothing."""
    flow = third_party
    junk = {f"junk{i}": "j" * 100_000 for i in range(20)}
    response = flow.authorize(**junk)
    request_id = query_of(response.headers["Location"])["request"]
    [params] = stored_rows(app)
    assert set(params) <= set(PARAMETER_LIMITS) and not any(name.startswith("junk") for name in params)
    assert params["state"] == "st-123" and params["nonce"] == "n-456"
    assert len(json.dumps(params)) < 1024
    assert flow.client.get(f"/login?request={request_id}").status_code == 200
    flow.sign_in(user)  # what the login form does on success
    consent_url = flow.client.get(f"/oauth2/authorize/resume/{request_id}").headers["Location"]
    assert consent_url == f"/consent/{request_id}"
    allowed = submit(flow.client, consent_url, {"allow": "Allow"})
    query = query_of(flow.client.get(allowed.headers["Location"]).headers["Location"])
    assert query["state"] == "st-123"
    assert "id_token" in flow.exchange(query["code"]).get_json()


def test_form_post_request_stores_only_known_parameters(flow, app):
    """OIDC Core 3.1.2.1: a POSTed request (900 KB of unknown fields) is kept the same way as a GET."""
    junk = {f"junk{i}": "j" * 100_000 for i in range(9)}
    response = flow.client.post("/oauth2/authorize", data=flow.authorize_params(**junk))
    assert response.headers["Location"].startswith("/login?request=")
    [params] = stored_rows(app)
    assert set(params) <= set(PARAMETER_LIMITS) and len(json.dumps(params)) < 1024


def test_values_at_their_limits_are_accepted_and_kept_within_the_row_bound(flow, app):
    """A value at its limit is accepted, and the row stays within MAX_STORED_BYTES (32 KiB)."""
    # The free-text parameters (the others must be registered or well-formed values to get this far).
    longest = {name: "a" * PARAMETER_LIMITS[name] for name in ("state", "nonce", "ui_locales", "login_hint", "acr_values")}
    claims = json.dumps({"userinfo": {"x" * (PARAMETER_LIMITS["claims"] - 24): None}})
    assert len(claims) == PARAMETER_LIMITS["claims"]
    response = flow.authorize(**longest, claims=claims)
    assert response.headers["Location"].startswith("/login?request="), response.headers["Location"]
    [params] = stored_rows(app)
    assert params["state"] == longest["state"] and len(json.dumps(params).encode()) <= MAX_STORED_BYTES


def test_oversized_state_gets_an_error_page_never_the_value(flow, user):
    """RFC 6749 4.1.2.1: the state must come back exactly, so a 900 KB one is refused on a page, not redirected."""
    response = flow.authorize(state=HUGE_STATE)
    assert_refused_by_page(response, HUGE_STATE)
    assert "The &#39;state&#39; parameter is too long." in response.get_data(as_text=True)
    flow.sign_in(user)
    assert_refused_by_page(flow.authorize(state=HUGE_STATE, prompt="none"), HUGE_STATE)


def test_oversized_state_by_form_post_gets_the_page(flow):
    """OIDC Core 3.1.2.1: a POSTed request is bounded the same as a GET."""
    response = flow.client.post("/oauth2/authorize", data=flow.authorize_params(state=HUGE_STATE))
    assert_refused_by_page(response, HUGE_STATE)


def test_oversized_state_with_another_error_is_never_echoed(flow):
    """RFC 6749 4.1.2.1: even a request that fails for another reason (bad scope, bad request object)
    answers the page rather than a redirect carrying the state."""
    for extra in ({"scope": "openid wizardry"}, {"request": "not-a-jwt"}, {"request_uri": "https://rp.example/r"}):
        assert_refused_by_page(flow.authorize(state=HUGE_STATE, **extra), HUGE_STATE)


def test_state_at_the_limit_works_one_more_is_refused(flow, user):
    """RFC 6749 4.1.2: a state of 2048 characters comes back exactly; 2049 is refused on the page."""
    flow.sign_in(user)
    state = "s" * PARAMETER_LIMITS["state"]
    query = query_of(flow.authorize(state=state).headers["Location"])
    assert query["state"] == state and query["code"]
    assert_refused_by_page(flow.authorize(state=state + "s"), state)


def test_oversized_redirect_uri_client_id_or_response_type_get_the_page(flow):
    """RFC 6749 4.1.2.1: where the answer goes is not trusted, and Authlib would echo the response_type."""
    for name in ("redirect_uri", "client_id", "response_type"):
        value = REDIRECT_URI + "x" * 100_000 if name == "redirect_uri" else "c" * 100_000
        response = flow.authorize(**{name: value})
        assert_refused_by_page(response, "x" * 200 if name == "redirect_uri" else value)
        assert f"The &#39;{name}&#39; parameter is too long." in response.get_data(as_text=True)


@pytest.mark.parametrize("name, value", [
    ("nonce", "n" * 100_000),
    ("login_hint", "l" * 100_000 + "@example.com"),
    ("scope", "openid " * 200),
    ("claims", json.dumps({"userinfo": {"x" * 9000: None}})),
    ("id_token_hint", "h" * 20_000),
    ("acr_values", "1 " * 300),
])
def test_other_oversized_parameters_are_invalid_request_at_the_redirect_uri(flow, name, value):
    """RFC 6749 4.1.2.1 / OIDC Core 3.1.2.6: invalid_request with the state, naming the parameter, not its value."""
    response = flow.authorize(**{name: value})
    assert_invalid_request_at_redirect(response, f"'{name}' is too long.", value)


def test_oversized_nonce_is_refused_with_a_session_too(flow, user):
    """OIDC Core 3.1.2.6: the same answer whether or not the user is signed in (no code is issued)."""
    flow.sign_in(user)
    assert_invalid_request_at_redirect(flow.authorize(nonce="n" * 501), "'nonce' is too long.", "n" * 501)


def test_what_escapes_large_in_storage_is_refused_as_too_large(flow):
    """RFC 6749 4.1.2.1: values within their limits whose stored JSON passes 32 KiB are invalid_request."""
    response = flow.authorize(id_token_hint="\u00e9" * 16_000)
    assert_invalid_request_at_redirect(response, "The authorization request is too large.", "%C3%A9" * 100)


def test_request_object_members_are_bounded_like_query_parameters(flow):
    """OIDC Core 6.3.3: members of a request object are used as parameters, so their limits hold too."""
    params = flow.authorize_params()
    nonce = "n" * 5000
    response = flow.authorize(request=unsigned({**params, "nonce": nonce}))
    assert_invalid_request_at_redirect(response, "'nonce' is too long.", nonce)
    state = "s" * 5000
    assert_refused_by_page(flow.authorize(request=unsigned({**params, "state": state})), state)


def test_request_object_members_are_not_stored_unless_known(flow, app):
    """OIDC Core 3.1.2.1 / 6.1: a request object's unknown members are ignored like unknown parameters."""
    params = flow.authorize_params()
    flow.authorize(request=unsigned({**params, "frobnicate": "f" * 30_000}))
    [stored] = stored_rows(app)
    assert "frobnicate" not in stored and "request" not in stored and stored["state"] == "st-123"


def test_oversized_request_object_is_invalid_request_object(flow):
    """OIDC Core 3.1.2.6: a request object over 64 KiB is invalid_request_object at the redirect URI."""
    params = flow.authorize_params()
    response = flow.authorize(request=unsigned({**params, "padding": "p" * 70_000}))
    query = query_of(response.headers["Location"])
    assert query["error"] == "invalid_request_object" and query["state"] == "st-123"
    assert "p" * 200 not in response.headers["Location"]


def test_deeply_nested_claims_parameter_is_invalid_request(flow):
    """OIDC Core 5.5 / RFC 6749 4.1.2.1: a `claims` value nested 3,000 deep (which once exhausted the
    parser's stack, a 500) is invalid JSON for this server: invalid_request at the redirect URI."""
    response = flow.authorize(claims="[" * 3000 + "]" * 3000)
    assert_invalid_request_at_redirect(response, "The 'claims' parameter is not valid JSON.", "[" * 200)


def test_deeply_nested_request_object_is_invalid_request_object(flow):
    """OIDC Core 6.1 / 3.1.2.6: a request object whose payload nests 5,000 deep is invalid_request_object
    at the redirect URI, never a 500."""
    def part(raw: str) -> str:
        return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()
    deep = f"{part(json.dumps({'alg': 'none'}))}.{part('[' * 5000 + ']' * 5000)}."
    response = flow.authorize(request=deep)
    query = query_of(response.headers["Location"])
    assert response.status_code == 302
    assert query["error"] == "invalid_request_object" and query["state"] == "st-123"


@pytest.fixture
def three_per_minute(app, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_AUTHORIZE_PENDING", "3 per minute")


def test_pending_creation_per_address_is_limited_with_retry_after(flow, app, three_per_minute):
    """The N+1-th pending request from one address: an HTML 429 with Retry-After, no redirect, no row."""
    for _ in range(3):
        assert flow.authorize().headers["Location"].startswith("/login?request=")
    refused = flow.authorize()
    assert refused.status_code == 429 and "Location" not in refused.headers
    assert "text/html" in refused.content_type and "temporarily_unavailable" in refused.get_data(as_text=True)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert pending_count(app) == 3
    other = flow.client.get("/oauth2/authorize?" + urlencode(flow.authorize_params()), environ_base=ELSEWHERE)
    assert other.headers["Location"].startswith("/login?request=")
    later = datetime.now(timezone.utc) + timedelta(seconds=int(refused.headers["Retry-After"]))
    with time_machine.travel(later):
        assert flow.authorize().headers["Location"].startswith("/login?request=")


def test_requests_answered_at_once_are_not_counted(flow, user, app, three_per_minute):
    """OIDC Core 3.1.2.1 / 3.1.2.6: a signed-in user's requests that get a code or an error at once store
    nothing and never count toward the pending-request limit."""
    flow.sign_in(user)
    for _ in range(5):
        assert "code" in query_of(flow.authorize(prompt="none").headers["Location"])
    for _ in range(3):
        assert flow.authorize(prompt="login").headers["Location"].startswith("/login?request=")
    assert flow.authorize(prompt="login").status_code == 429
    assert "code" in query_of(flow.authorize(prompt="none").headers["Location"])


def test_pending_limit_is_off_with_ratelimit_enabled_false(flow, app, three_per_minute, monkeypatch):
    """RATELIMIT_ENABLED=false (load tests) turns the pending-request limit off with the others."""
    monkeypatch.setitem(app.config, "RATELIMIT_ENABLED", False)
    for _ in range(5):
        assert flow.authorize().headers["Location"].startswith("/login?request=")
