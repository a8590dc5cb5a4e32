"""The authorization_code grant at the token endpoint: bindings, PKCE, single use, replay revocation."""
from datetime import datetime, timedelta, timezone

import time_machine

from tests.oidc.conftest import basic_auth


def test_code_exchange_returns_tokens_with_no_store(flow, user):
    """RFC 6749 5.1: token response JSON with Cache-Control no-store; OIDC Core 3.1.3.3 id_token."""
    flow.sign_in(user)
    response = flow.exchange(flow.code())
    body = response.get_json()
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert body["token_type"] == "Bearer" and body["access_token"] and body["id_token"]
    assert "refresh_token" not in body  # no offline_access requested


def test_wrong_code_verifier_is_invalid_grant(flow, user):
    """RFC 7636 4.6: a verifier that does not match the challenge is invalid_grant."""
    flow.sign_in(user)
    code = flow.code()
    response = flow.exchange(code, code_verifier="x" * 50)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_missing_code_verifier_is_refused(flow, user):
    """RFC 7636 4.5: a code issued with a challenge needs the verifier."""
    flow.sign_in(user)
    response = flow.exchange(flow.code(), code_verifier=None)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_verifier_without_challenge_is_refused(flow, user):
    """RFC 9700 4.8.2: a code_verifier for a code issued without a challenge is refused."""
    flow.sign_in(user)
    code = flow.code(code_challenge=None, code_challenge_method=None)
    assert flow.exchange(code, code_verifier="y" * 50).status_code == 400


def test_redirect_uri_must_match_the_authorization_request(flow, user):
    """RFC 6749 4.1.3: redirect_uri must be identical to the one in the authorization request."""
    flow.sign_in(user)
    response = flow.exchange(flow.code(), redirect_uri="https://rp.example/other")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_code_is_bound_to_its_client(flow, user, factories):
    """RFC 6749 4.1.3: a code issued to one client cannot be redeemed by another."""
    flow.sign_in(user)
    code = flow.code()
    other = factories.client()
    response = flow.client.post("/oauth2/token", headers=basic_auth(other.client_id), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": "https://rp.example/callback",
        "code_verifier": flow.verifier})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_code_tried_by_another_client_stays_redeemable_by_its_own(flow, user, factories):
    """RFC 6749 4.1.3: another client's attempt is refused without spending the code (nor counting as
    a replay): its own client then redeems it once."""
    flow.sign_in(user)
    code = flow.code()
    other = factories.client()
    refused = flow.client.post("/oauth2/token", headers=basic_auth(other.client_id), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": "https://rp.example/callback",
        "code_verifier": flow.verifier})
    assert refused.get_json()["error"] == "invalid_grant"
    tokens = flow.exchange(code)
    assert tokens.status_code == 200 and "access_token" in tokens.get_json()
    assert flow.exchange(code).get_json()["error"] == "invalid_grant"


def test_expired_code_is_invalid_grant(flow, user):
    """RFC 6749 4.1.2: codes are short-lived (60 s by default)."""
    flow.sign_in(user)
    code = flow.code()
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(seconds=61)):
        response = flow.exchange(code)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_failed_pkce_does_not_burn_the_code(flow, user):
    """A refused redemption rolls back: the rightful holder can still redeem the code once."""
    flow.sign_in(user)
    code = flow.code()
    assert flow.exchange(code, code_verifier="z" * 50).status_code == 400
    assert flow.exchange(code).status_code == 200


def test_code_replay_fails_and_revokes_issued_tokens(flow, user, client, app):
    """RFC 6749 4.1.2 / RFC 9700 4.5: a second redemption is invalid_grant and revokes the tokens."""
    from idp.models import AuditEvent

    flow.sign_in(user)
    code = flow.code(scope="openid offline_access")
    first = flow.exchange(code).get_json()
    replay = flow.exchange(code)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    userinfo = client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {first['access_token']}"})
    assert userinfo.status_code == 401
    assert flow.refresh(first["refresh_token"]).get_json()["error"] == "invalid_grant"
    with app.app_context():
        [event] = AuditEvent.query.filter_by(action="oauth.code_replay").all()
        assert event.outcome == "failure" and event.details["alert"] is True
        assert event.details["tokens_revoked"] >= 2 and event.target_id == flow.rp.client_id


def test_code_redeemed_after_logout_is_refused(flow, user, app):
    """A code is bound to its SSO session: after that session ended it yields no tokens."""
    from idp.extensions import db
    from idp.models import Session, utcnow

    session_id = flow.sign_in(user)
    code = flow.code()
    with app.app_context():
        db.session.get(Session, session_id).revoke(utcnow())
        db.session.commit()
    assert flow.exchange(code).get_json()["error"] == "invalid_grant"


def test_public_client_redeems_with_pkce_and_no_secret(flow, factories):
    """RFC 7636 + RFC 6749 2.1: a public client authenticates with none and proves possession via PKCE."""
    user = factories.user()
    flow.rp = factories.client(secret=None, token_endpoint_auth_method="none", first_party=True,
                               redirect_uris=["https://rp.example/callback"])
    flow.sign_in(user)
    code = flow.code()
    response = flow.client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": flow.rp.client_id,
        "redirect_uri": "https://rp.example/callback", "code_verifier": flow.verifier})
    assert response.status_code == 200 and response.get_json()["id_token"]
