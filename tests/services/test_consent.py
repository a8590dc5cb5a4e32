"""Remembered consent: grant, check, list, revoke (which also revokes the client's tokens)."""
from idp.extensions import db
from idp.models import OAuthClient, User
from idp.services import consent
from tests.oidc.conftest import flow, rp, user  # noqa: F401  (shared OIDC fixtures)


def test_grant_and_check_consent_by_scopes(app, factories):
    """Consent covers the granted scopes only, and later grants add to it."""
    user, rp = factories.user(), factories.client()
    with app.app_context():
        u, c = db.session.get(User, user.id), db.session.get(OAuthClient, rp.id)
        consent.grant_consent(u, c, ["openid", "email"])
        assert consent.has_consent(u, c, ["openid"]) and not consent.has_consent(u, c, ["openid", "phone"])
        consent.grant_consent(u, c, ["phone"])
        assert consent.has_consent(u, c, ["openid", "email", "phone"])
        [(listed, scopes, granted_at)] = consent.list_consents(u)
        assert listed.id == rp.id and scopes == ["email", "openid", "phone"] and granted_at


def test_revoke_consent_revokes_the_clients_tokens(flow, user, client, app):
    """Withdrawing consent forgets it and revokes that client's access and refresh tokens for the user."""
    flow.sign_in(user)
    tokens = flow.tokens(scope="openid offline_access")
    with app.app_context():
        u, c = db.session.get(User, user.id), db.session.get(OAuthClient, flow.rp.id)
        consent.grant_consent(u, c, ["openid"])
        assert consent.revoke_consent(u, c) is True
        db.session.commit()
        assert consent.list_consents(u) == []
    assert client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code == 401
    assert flow.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_grant"
