"""The token rows a code exchange writes: bound to the code, none for a refused exchange."""
import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import AccessToken, AuthorizationCode, RefreshToken
from idp.security.secrets import hash_token
from tests.oidc.grants.test_refresh_token import verified_claims


def token_row_counts(app) -> tuple[int, int]:
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(AccessToken)),
                db.session.scalar(select(func.count()).select_from(RefreshToken)))


@pytest.mark.parametrize("refusal", [{"code_verifier": "z" * 50}, {"redirect_uri": "https://rp.example/other"}])
def test_refused_exchange_writes_no_token_row_and_the_code_redeems_once(flow, user, app, refusal):
    """RFC 6749 4.1.3 / RFC 7636 4.6: a refused exchange (invalid_grant, after the code was read)
    issues nothing and spends nothing: no token row; the rightful request then redeems the code once."""
    flow.sign_in(user)
    code = flow.code(scope="openid offline_access")
    before = token_row_counts(app)
    assert flow.exchange(code, **refusal).get_json()["error"] == "invalid_grant"
    assert token_row_counts(app) == before
    assert flow.exchange(code).status_code == 200
    assert token_row_counts(app) == (before[0] + 1, before[1] + 1)
    assert flow.exchange(code).get_json()["error"] == "invalid_grant"


def test_exchange_records_its_tokens_under_the_code(flow, user, client, app):
    """RFC 6749 4.1.4 / RFC 9700 4.5: the access token's record and the refresh token carry the code's
    client, user, session, scope and claims request, with the code as their grant (what a replay revokes)."""
    flow.sign_in(user, amr=["pwd", "otp"])
    code = flow.code(scope="openid profile offline_access", claims='{"id_token": {"email": null}}')
    body = flow.exchange(code).get_json()
    with app.app_context():
        issued = db.session.scalars(select(AuthorizationCode).filter_by(code_hash=hash_token(code))).one()
        jti = verified_claims(client, body["access_token"])["jti"]
        access = db.session.scalars(select(AccessToken).filter_by(jti=jti)).one()
        refresh = db.session.scalars(select(RefreshToken).filter_by(token_hash=hash_token(body["refresh_token"]))).one()
        bound = ("oauth_client_id", "user_id", "session_id", "scope", "claims")
        assert [getattr(access, name) for name in bound] == [getattr(issued, name) for name in bound]
        assert [getattr(refresh, name) for name in bound] == [getattr(issued, name) for name in bound]
        assert (access.grant_id, refresh.grant_id) == (issued.id, issued.id)
        assert (refresh.auth_time, refresh.acr, refresh.amr) == (issued.auth_time, issued.acr, issued.amr)
        assert access.expires_at.timestamp() == pytest.approx(verified_claims(client, body["access_token"])["exp"])


def test_exchange_without_offline_access_records_no_refresh_token(flow, user, app):
    """OIDC Core 11: without offline_access the exchange issues and stores no refresh token."""
    flow.sign_in(user)
    code = flow.code(scope="openid profile")
    before = token_row_counts(app)
    body = flow.exchange(code).get_json()
    assert "refresh_token" not in body and token_row_counts(app) == (before[0] + 1, before[1])


def test_client_refreshing_by_policy_gets_a_refresh_token_without_offline_access(flow, user, app, factories):
    """A client whose policy is refresh_without_offline_access gets (and the server stores) a refresh
    token for a code without offline_access; the token refreshes."""
    flow.rp = factories.client(redirect_uris=["https://rp.example/callback"], first_party=True,
                               refresh_without_offline_access=True)
    flow.sign_in(user)
    before = token_row_counts(app)
    body = flow.exchange(flow.code(scope="openid profile")).get_json()
    assert body["refresh_token"] and token_row_counts(app) == (before[0] + 1, before[1] + 1)
    assert flow.refresh(body["refresh_token"]).status_code == 200


def test_client_without_the_refresh_grant_gets_no_refresh_token(flow, user, app, factories):
    """RFC 6749 5.1 / OIDC Core 11: a client not allowed the refresh_token grant gets none, offline_access
    or not, and none is stored."""
    flow.rp = factories.client(redirect_uris=["https://rp.example/callback"], first_party=True,
                               grant_types=["authorization_code"])
    flow.sign_in(user)
    before = token_row_counts(app)
    body = flow.exchange(flow.code(scope="openid offline_access")).get_json()
    assert body["access_token"] and "refresh_token" not in body
    assert token_row_counts(app) == (before[0] + 1, before[1])
