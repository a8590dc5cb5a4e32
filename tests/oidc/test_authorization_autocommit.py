"""A fresh authorization request on PostgreSQL runs its single-statement writes in autocommit."""
import pytest

from idp.extensions import db, idle_connection_ping
from tests.oidc.conftest import query_of


@pytest.mark.postgres
def test_code_issued_from_sso_session_is_redeemable_and_audited(flow, user, app):
    """OIDC Core 3.1.2.5 / RFC 6749 4.1.2: the code (issued without a transaction round trip) is
    stored with its audit row and redeems once at the token endpoint (RFC 6749 4.1.3)."""
    from idp.models import AuditEvent, AuthorizationCode

    flow.sign_in(user)
    code = flow.code()
    with app.app_context():
        assert AuthorizationCode.query.count() == 1
        assert AuditEvent.query.filter_by(action="oauth.authorized").count() == 1
    response = flow.exchange(code)
    assert response.status_code == 200 and response.get_json()["id_token"]
    assert flow.exchange(code).status_code == 400


@pytest.mark.postgres
def test_authorize_on_a_connection_pinged_after_idling_issues_the_code(flow, user, monkeypatch):
    """A pooled connection pinged on checkout (it sat idle) still serves the request: the ping
    leaves no transaction open that would keep the request from running in autocommit."""
    flow.sign_in(user)
    monkeypatch.setattr(idle_connection_ping, "idle_seconds", 0.0)  # every checkout is pinged
    response = flow.authorize()
    assert response.status_code == 302 and query_of(response.headers["Location"])["code"]


@pytest.mark.postgres
def test_connection_goes_back_to_the_pool_transactional(flow, user, app):
    """After an authorize request the pool's connections open transactions again: a later request
    that writes several statements (a token exchange) keeps them atomic."""
    flow.sign_in(user)
    assert flow.authorize().status_code == 302
    with app.app_context():
        with db.engine.connect() as connection:
            assert connection.connection.dbapi_connection.autocommit is False
            assert connection.get_isolation_level() == connection.default_isolation_level
