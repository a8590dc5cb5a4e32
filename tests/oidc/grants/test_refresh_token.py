"""The refresh_token grant: offline_access policy, rotation, reuse revoking the family."""
import threading
from datetime import datetime, timedelta, timezone

import pytest
import time_machine


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_refresh_token_only_with_offline_access(flow, user):
    """OIDC Core 11: refresh tokens are issued when offline_access was granted."""
    flow.sign_in(user)
    assert "refresh_token" not in flow.tokens(scope="openid profile")
    assert "refresh_token" in flow.tokens(scope="openid offline_access")


def test_client_policy_can_allow_refresh_without_offline_access(flow, user, factories):
    """A client whose policy says so gets refresh tokens without offline_access."""
    flow.rp = factories.client(redirect_uris=["https://rp.example/callback"], first_party=True,
                               refresh_without_offline_access=True)
    flow.sign_in(user)
    assert "refresh_token" in flow.tokens(scope="openid")


def test_refresh_rotates_and_old_token_stops_working(flow, user, client):
    """RFC 9700 4.14.2: every refresh returns a new refresh token; the old one is spent."""
    flow.sign_in(user)
    first = flow.tokens(scope="openid offline_access")
    second = flow.refresh(first["refresh_token"]).get_json()
    assert second["refresh_token"] != first["refresh_token"]
    third = flow.refresh(second["refresh_token"])
    assert third.status_code == 200
    assert client.get("/oauth2/userinfo", headers=bearer(third.get_json()["access_token"])).status_code == 200


def test_reuse_of_rotated_token_revokes_whole_family(flow, user, client, app):
    """RFC 9700 4.14.2: presenting a rotated refresh token revokes every token of its family."""
    from idp.models import AuditEvent

    flow.sign_in(user)
    first = flow.tokens(scope="openid offline_access")
    second = flow.refresh(first["refresh_token"]).get_json()
    reuse = flow.refresh(first["refresh_token"])
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    assert flow.refresh(second["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert client.get("/oauth2/userinfo", headers=bearer(second["access_token"])).status_code == 401
    with app.app_context():
        [event] = AuditEvent.query.filter_by(action="oauth.refresh_reuse").all()
        assert event.outcome == "failure" and event.details["alert"] is True
        assert event.details["tokens_revoked"] >= 2 and event.actor_user_id == user.id


def test_other_families_survive_a_reuse(flow, user):
    """Family revocation is scoped to one grant: another sign-in's tokens keep working."""
    flow.sign_in(user)
    victim = flow.tokens(scope="openid offline_access")
    other = flow.tokens(scope="openid offline_access")
    flow.refresh(victim["refresh_token"])
    flow.refresh(victim["refresh_token"])
    assert flow.refresh(other["refresh_token"]).status_code == 200


def test_refresh_token_bound_to_client(flow, user, factories):
    """RFC 6749 6: a refresh token issued to one client is invalid_grant for another."""
    from tests.oidc.conftest import basic_auth

    flow.sign_in(user)
    tokens = flow.tokens(scope="openid offline_access")
    other = factories.client()
    response = flow.client.post("/oauth2/token", headers=basic_auth(other.client_id),
                                data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert response.get_json()["error"] == "invalid_grant"


def test_refresh_refused_to_another_client_leaves_the_token_to_its_own(flow, user, factories):
    """RFC 6749 6 / RFC 9700 4.14.2: another client's attempt is refused and spends nothing; the
    token's own client refreshes with it once, and only once."""
    from tests.oidc.conftest import basic_auth

    flow.sign_in(user)
    tokens = flow.tokens(scope="openid offline_access")
    other = factories.client()
    refused = flow.client.post("/oauth2/token", headers=basic_auth(other.client_id),
                               data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refused.get_json()["error"] == "invalid_grant"
    assert flow.refresh(tokens["refresh_token"]).status_code == 200
    assert flow.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_refresh_can_narrow_but_not_widen_scope(flow, user):
    """RFC 6749 6: the new scope must be within the original grant."""
    flow.sign_in(user)
    tokens = flow.tokens(scope="openid profile offline_access")
    assert flow.refresh(tokens["refresh_token"], scope="openid phone").get_json()["error"] == "invalid_scope"
    narrowed = flow.refresh(tokens["refresh_token"], scope="openid offline_access").get_json()
    assert narrowed["scope"] == "openid offline_access"


def test_expired_refresh_token_is_invalid_grant(flow, user):
    """RFC 6749 5.2: an expired refresh token is invalid_grant."""
    flow.sign_in(user)
    tokens = flow.tokens(scope="openid offline_access")
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=31)):
        assert flow.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


def verified_claims(client, token: str) -> dict:
    """The claims of a JWT whose signature verifies against the published JWKS."""
    from joserfc import jwt
    from joserfc.jwk import KeySet

    keys = KeySet.import_key_set(client.get("/oauth2/jwks").get_json())
    return jwt.decode(token, keys).claims


def test_refresh_returns_a_new_id_token_like_the_original(flow, user, client):
    """OIDC Core 12.2: a refresh with `openid` answers a new ID token whose iss, sub, aud, azp and
    auth_time are the original's, with a new iat, no nonce, and at_hash of the new access token."""
    from authlib.oidc.core.util import create_half_hash

    flow.sign_in(user)
    with time_machine.travel(datetime.now(timezone.utc), tick=False) as clock:
        first = flow.tokens(scope="openid email offline_access")
        clock.shift(timedelta(minutes=5))
        refreshed = flow.refresh(first["refresh_token"]).get_json()
    original, renewed = verified_claims(client, first["id_token"]), verified_claims(client, refreshed["id_token"])
    for name in ("iss", "sub", "aud", "azp", "auth_time", "sid", "email"):
        assert renewed[name] == original[name], name
    assert renewed["iat"] == original["iat"] + 300 and "nonce" in original and "nonce" not in renewed
    assert renewed["at_hash"] == create_half_hash(refreshed["access_token"], "RS256").decode()


def test_refresh_without_openid_returns_no_id_token(flow, user):
    """OIDC Core 12.2 / RFC 6749 6: a refresh narrowed to scopes without `openid` is plain OAuth."""
    flow.sign_in(user)
    first = flow.tokens(scope="openid offline_access")
    refreshed = flow.refresh(first["refresh_token"], scope="offline_access").get_json()
    assert "access_token" in refreshed and "id_token" not in refreshed


@pytest.mark.postgres
def test_concurrent_refreshes_let_exactly_one_win(oidc_server, factories):
    """RFC 9700 4.14.2: 20 concurrent refreshes with one token on PostgreSQL -> exactly one succeeds;
    the others are reuse, which revokes the family, the winner's new refresh token included."""
    import requests

    from tests.oidc.conftest import REDIRECT_URI, SECRET
    from tests.oidc.test_endpoints import authorize_over_http

    rp = factories.client(redirect_uris=[REDIRECT_URI], first_party=True,
                          grant_types=["authorization_code", "refresh_token"],
                          scope="openid profile email offline_access")
    session, location, verifier = authorize_over_http(oidc_server, rp, factories.user())
    token_url = oidc_server.url + "/oauth2/token"
    first = session.fetch_token(token_url, authorization_response=location, code_verifier=verifier)
    barrier = threading.Barrier(20)
    responses: list[requests.Response] = []

    def refresh():
        barrier.wait()
        responses.append(requests.post(token_url, auth=(rp.client_id, SECRET), timeout=30, data={
            "grant_type": "refresh_token", "refresh_token": first["refresh_token"]}))

    threads = [threading.Thread(target=refresh) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in responses) == [200] + [400] * 19
    [winner] = [r.json() for r in responses if r.status_code == 200]
    again = requests.post(token_url, auth=(rp.client_id, SECRET), timeout=30,
                          data={"grant_type": "refresh_token", "refresh_token": winner["refresh_token"]})
    assert again.json()["error"] == "invalid_grant"


def test_refresh_records_its_new_tokens_with_the_granted_scope_and_a_refusal_records_none(flow, user, client, app):
    """RFC 6749 6: a refresh narrowed to part of the grant issues tokens of that scope; the new access
    token's record and the new refresh token keep the grant, session and sign-in of the old one. A
    refusal (invalid_scope, after the old token was read) writes no token row and spends nothing."""
    from sqlalchemy import func, select

    from idp.extensions import db
    from idp.models import AccessToken, RefreshToken
    from idp.security.secrets import hash_token

    def counts() -> tuple[int, int]:
        with app.app_context():
            return (db.session.scalar(select(func.count()).select_from(AccessToken)),
                    db.session.scalar(select(func.count()).select_from(RefreshToken)))

    flow.sign_in(user)
    first = flow.tokens(scope="openid profile offline_access")
    before = counts()
    assert flow.refresh(first["refresh_token"], scope="openid phone").get_json()["error"] == "invalid_scope"
    assert counts() == before
    narrowed = flow.refresh(first["refresh_token"], scope="openid offline_access").get_json()
    assert counts() == (before[0] + 1, before[1] + 1)
    with app.app_context():
        old = db.session.scalars(select(RefreshToken).filter_by(token_hash=hash_token(first["refresh_token"]))).one()
        new = db.session.scalars(select(RefreshToken).filter_by(token_hash=hash_token(narrowed["refresh_token"]))).one()
        jti = verified_claims(client, narrowed["access_token"])["jti"]
        access = db.session.scalars(select(AccessToken).filter_by(jti=jti)).one()
        assert (new.scope, access.scope) == ("openid offline_access", "openid offline_access")
        inherited = ("oauth_client_id", "user_id", "session_id", "grant_id", "claims")
        assert [getattr(new, name) for name in inherited] == [getattr(old, name) for name in inherited]
        assert [getattr(access, name) for name in inherited] == [getattr(old, name) for name in inherited]
        assert (new.auth_time, new.acr, new.amr) == (old.auth_time, old.acr, old.amr)
        assert new.rotated_at is None and old.rotated_at is not None
    assert client.get("/oauth2/userinfo", headers=bearer(narrowed["access_token"])).status_code == 200
