"""Machine endpoints: metadata and keys served as prebuilt bytes with validators (RFC 9110 8.8.3,
13.1.2, 15.4.5; OIDC Discovery 1.0 4), and no browser plumbing on the endpoints programs call (no
cookie session, no page headers; RFC 6749 5.1 no-store where tokens travel)."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import Session as SessionRow
from idp.models.base import utcnow
from tests.oidc.conftest import basic_auth

DOCUMENTS = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/oauth2/jwks"]


@pytest.fixture
def own_keys(make_app, tmp_path):
    """An app with its own KEYS_DIR (made at start-up), so rotating keys here touches no other test."""
    return make_app(KEYS_DIR=str(tmp_path / "keys"))


# validators and conditional requests ------------------------------------------------------------

@pytest.mark.parametrize("path", DOCUMENTS)
def test_documents_carry_a_strong_etag_stable_across_requests_and_workers(path, client, make_app):
    """RFC 9110 8.8.3: a strong ETag (no W/ prefix); the same bytes get the same tag on every request
    and in every process (another app on the same keys stands for another worker or node)."""
    first, second = client.get(path), client.get(path)
    other = make_app().test_client().get(path)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('"') and etag.endswith('"')
    assert second.headers["ETag"] == other.headers["ETag"] == etag
    assert second.data == other.data == first.data and first.mimetype == "application/json"
    assert first.headers["Cache-Control"].startswith("public, max-age=")


def test_jwks_max_age_is_below_the_next_key_pre_publication_window(client):
    """Relying parties re-read the JWKS within 60 s, the wait keys/README.md asks between publishing a
    `next` key and activating it, so a new key is in their caches before it signs."""
    assert client.get("/oauth2/jwks").headers["Cache-Control"] == "public, max-age=60"
    assert client.get("/.well-known/openid-configuration").headers["Cache-Control"] == "public, max-age=300"


@pytest.mark.parametrize("path", DOCUMENTS)
def test_matching_if_none_match_is_304_without_body(path, client):
    """RFC 9110 13.1.2 / 15.4.5: If-None-Match naming the current tag (weak comparison, so W/ matches
    too, and `*` matches any) is 304 with the ETag and Cache-Control a 200 would carry, and no body;
    the CORS header stays, so a browser app's revalidation works cross-origin."""
    fresh = client.get(path)
    etag = fresh.headers["ETag"]
    for condition in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = client.get(path, headers={"If-None-Match": condition, "Origin": "https://spa.example"})
        assert response.status_code == 304 and response.data == b""
        assert response.headers["ETag"] == etag and response.headers["Cache-Control"] == fresh.headers["Cache-Control"]
        assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("path", DOCUMENTS)
def test_stale_if_none_match_is_200_with_the_document(path, client):
    """RFC 9110 13.1.2: a tag that no longer matches gets the full current representation."""
    fresh = client.get(path)
    response = client.get(path, headers={"If-None-Match": '"an-old-tag"'})
    assert response.status_code == 200 and response.data == fresh.data and response.get_json()
    assert response.headers["ETag"] == fresh.headers["ETag"]


def test_key_rotation_changes_the_jwks_and_its_etag_at_once(own_keys):
    """A key published as `next` is in the very next JWKS response (new bytes, new ETag), and a client
    revalidating with the old tag gets the new document, not a 304."""
    client = own_keys.test_client()
    before = client.get("/oauth2/jwks")
    with own_keys.app_context():
        added = own_keys.extensions["oidc"]["keys"].generate("RS256")
    after = client.get("/oauth2/jwks", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert added["kid"] in {k["kid"] for k in after.get_json()["keys"]}
    assert added["kid"] not in {k["kid"] for k in before.get_json()["keys"]}


def test_discovery_follows_the_active_algorithms(own_keys):
    """OIDC Discovery 1.0 3: id_token_signing_alg_values_supported names what signs now; retiring the
    ES256 key changes the document and its ETag on the next request."""
    client = own_keys.test_client()
    before = client.get("/.well-known/openid-configuration")
    assert "ES256" in before.get_json()["id_token_signing_alg_values_supported"]
    with own_keys.app_context():
        keys = own_keys.extensions["oidc"]["keys"]
        keys.retire(keys.signing_key("ES256").kid)
    after = client.get("/.well-known/openid-configuration", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert after.get_json()["id_token_signing_alg_values_supported"] == ["RS256"]


# no browser plumbing --------------------------------------------------------------------------

def _browser_cookies(client, flow, user) -> str:
    """A browser's cookies: the SSO session and the signed form session (with its CSRF token)."""
    session_id = flow.sign_in(user)
    assert client.get("/login").status_code in (200, 302)
    return session_id


def _machine_requests(client, rp):
    token = client.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=basic_auth(rp.client_id))
    bearer = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
    return [token, client.post("/oauth2/introspect", data={"token": "x"}, headers=basic_auth(rp.client_id)),
            client.post("/oauth2/revoke", data={"token": "x"}, headers=basic_auth(rp.client_id)),
            client.get("/oauth2/userinfo", headers=bearer), client.post("/oauth2/register", json={}),
            client.get("/oauth2/register/some-client", headers={"Authorization": "Bearer x"}),  # (a path with a variable)
            *(client.get(path) for path in DOCUMENTS),
            client.get("/.well-known/webfinger", query_string={"resource": "acct:joe@localhost"})]


def test_machine_endpoints_set_no_cookie_even_with_browser_cookies(client, flow, user, rp):
    """Programs get no cookie back and no `Vary: Cookie`, even when the request carries a browser's
    session cookies: the cookie session is never opened for them."""
    _browser_cookies(client, flow, user)
    for response in _machine_requests(client, rp):
        assert "Set-Cookie" not in response.headers, response.request.path
        assert "cookie" not in response.headers.get("Vary", "").lower(), response.request.path


def test_token_request_with_a_browser_cookie_does_not_touch_the_sso_session(client, flow, user, rp, app):
    """The token endpoint never looks at the browser's SSO session: its idle window is not slid (a
    page the browser opens does slide it)."""
    session_id = _browser_cookies(client, flow, user)
    earlier = utcnow() - timedelta(minutes=2)
    with app.app_context():
        row = db.session.get(SessionRow, session_id)
        row.last_seen_at, row.expires_at = earlier, row.expires_at - timedelta(minutes=2)
        db.session.commit()

    def last_seen():
        with app.app_context():
            return db.session.scalar(select(SessionRow.last_seen_at).where(SessionRow.id == session_id))

    response = client.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=basic_auth(rp.client_id))
    assert response.status_code == 200 and last_seen() == earlier
    assert client.get("/account").status_code == 200 and last_seen() > earlier


def test_machine_responses_get_only_the_headers_programs_need(client, rp):
    """JSON for programs: nosniff, the request id; token-bearing answers are `no-store` with
    `Pragma: no-cache` (RFC 6749 5.1); none carries the page-only CSP or framing headers."""
    request_id = str(uuid.uuid4())
    token = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                        headers={**basic_auth(rp.client_id), "X-Request-ID": request_id})
    assert token.status_code == 200 and token.headers["X-Request-ID"] == request_id
    assert token.headers["Cache-Control"] == "no-store" and token.headers["Pragma"] == "no-cache"
    refused = client.post("/oauth2/introspect", data={"token": "x"})
    assert refused.status_code == 401 and refused.headers["Cache-Control"] == "no-store"
    for response in _machine_requests(client, rp):
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.request.path
        assert uuid.UUID(response.headers["X-Request-ID"])
        assert "Content-Security-Policy" not in response.headers and "X-Frame-Options" not in response.headers


def test_machine_endpoints_send_hsts_under_https(make_app, factories):
    """RFC 6797: under an https ISSUER, machine responses carry Strict-Transport-Security too."""
    client = make_app(ISSUER="https://idp.example").test_client()
    for path in ("/oauth2/jwks", "/.well-known/openid-configuration"):
        assert client.get(path).headers["Strict-Transport-Security"].startswith("max-age=")
    assert client.post("/oauth2/token").headers["Strict-Transport-Security"].startswith("max-age=")


def test_pages_keep_their_browser_headers(client):
    """HTML pages keep the CSP (frame-ancestors 'none'), framing and referrer policies and the form
    session cookie that carries the CSRF token."""
    response = client.get("/login")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Referrer-Policy"] == "same-origin"
    assert "authy2_form=" in response.headers.get("Set-Cookie", "")


# answered in front of Flask --------------------------------------------------------------------

REQUEST_ID = "123e4567-e89b-12d3-a456-426614174000"
CORS = {"Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "Retry-After, WWW-Authenticate, X-Request-ID"}


@pytest.mark.parametrize("path", DOCUMENTS)
def test_documents_have_exactly_these_headers(path, client):
    """The complete header set of a 200, a HEAD and a 304 (RFC 9110 9.3.2: HEAD has the GET's headers
    and no body; 15.4.5: a 304 has the 200's ETag and Cache-Control and no content headers): nothing
    else, the X-Request-ID a client sent as a UUID echoed (lower-cased), CORS always."""
    sent = {"X-Request-ID": REQUEST_ID.upper(), "Origin": "https://spa.example"}
    got = client.get(path, headers=sent)
    validators = {"ETag": got.headers["ETag"], "Cache-Control": got.headers["Cache-Control"]}
    full = {**validators, "Content-Type": "application/json", "Content-Length": str(len(got.data)),
            "X-Content-Type-Options": "nosniff", "X-Request-ID": REQUEST_ID, **CORS}
    head = client.head(path, headers=sent)
    not_modified = client.get(path, headers={**sent, "If-None-Match": got.headers["ETag"]})
    assert (got.status_code, dict(got.headers), len(got.headers)) == (200, full, len(full))
    assert (head.status_code, dict(head.headers), head.data) == (200, full, b"")
    unchanged = {**validators, "X-Content-Type-Options": "nosniff", "X-Request-ID": REQUEST_ID, **CORS}
    assert (not_modified.status_code, dict(not_modified.headers), not_modified.data) == (304, unchanged, b"")


@pytest.mark.parametrize("path", DOCUMENTS)
def test_other_methods_on_the_documents_are_405(path, client):
    """RFC 9110 15.5.6: a method the resource does not support is 405 with an Allow header naming the
    ones it does (GET, HEAD and the CORS preflight's OPTIONS), as an RFC 6749 5.2 style JSON error."""
    response = client.post(path, data={"x": "1"})
    assert response.status_code == 405 and response.get_json()["error"] == "invalid_request"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_document_requests_do_not_enter_flask(app, client):
    """GET and HEAD of the documents are answered before Flask (no request is started there); every
    other method and path still is Flask's."""
    from flask import request_started

    seen = []

    def record(sender, **extra):
        from flask import request
        seen.append((request.method, request.path))

    request_started.connect(record, app)
    try:
        for path in DOCUMENTS:
            client.get(path)
            client.head(path)
        client.options("/oauth2/jwks")
        client.get("/.well-known/webfinger", query_string={"resource": "acct:joe@localhost"})
    finally:
        request_started.disconnect(record, app)
    assert seen == [("OPTIONS", "/oauth2/jwks"), ("GET", "/.well-known/webfinger")]


def test_unreadable_keys_are_the_json_server_error_flask_gives(own_keys):
    """RFC 6749 5.2 style JSON for a failure outside Authlib: a JWKS that cannot be built (metadata.json
    unreadable) is the provider's JSON 500, not a bare server error from in front of Flask."""
    from pathlib import Path

    own_keys.config["PROPAGATE_EXCEPTIONS"] = False  # as in production (testing re-raises)
    (Path(own_keys.config["KEYS_DIR"]) / "metadata.json").write_text("not json")
    response = own_keys.test_client().get("/oauth2/jwks")
    assert response.status_code == 500 and response.get_json()["error"] == "server_error"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", DOCUMENTS)
def test_a_method_werkzeug_reads_as_get_gets_the_same_answer(path, client):
    """A lower-case `get`, which werkzeug routes as GET, reaches Flask's view and gets the same
    document and headers as GET."""
    got = client.get(path, headers={"X-Request-ID": REQUEST_ID})
    routed = client.open(path, method="get", headers={"X-Request-ID": REQUEST_ID})
    assert (routed.status_code, routed.data) == (200, got.data)
    assert sorted(routed.headers.items()) == sorted(got.headers.items())
