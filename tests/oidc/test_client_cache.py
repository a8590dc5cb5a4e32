"""The per-process client cache: the token endpoint reads a client once per CLIENT_CACHE_SECONDS."""
from sqlalchemy import event

from idp.extensions import db
from idp.models import OAuthClient
from tests.oidc.conftest import basic_auth


def count_client_selects(app, action) -> int:
    seen = []

    def listener(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "oauth_clients" in statement:
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", listener)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return len(seen)


def test_cached_client_is_read_once(make_app, rp):
    """With CLIENT_CACHE_SECONDS set, repeated token requests issue no client SELECT after the first."""
    app = make_app(CLIENT_CACHE_SECONDS=30)
    client = app.test_client()

    def three_tokens():
        for _ in range(3):
            assert client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                               headers=basic_auth(rp.client_id)).status_code == 200

    assert count_client_selects(app, three_tokens) == 1


def test_changed_secret_applies_after_cache_expiry(make_app, rp):
    """A cached client keeps its old secret only until its entry expires (the stated staleness)."""
    from datetime import datetime, timedelta, timezone

    import time_machine

    from idp.security.secrets import hash_client_secret

    app = make_app(CLIENT_CACHE_SECONDS=30)
    client = app.test_client()
    token = {"grant_type": "client_credentials"}
    assert client.post("/oauth2/token", data=token, headers=basic_auth(rp.client_id)).status_code == 200
    with app.app_context():
        db.session.get(OAuthClient, rp.id).client_secret_hash = hash_client_secret("rotated-secret")
        db.session.commit()
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(seconds=31)):
        assert client.post("/oauth2/token", data=token, headers=basic_auth(rp.client_id)).status_code == 401
        assert client.post("/oauth2/token", data=token,
                           headers=basic_auth(rp.client_id, "rotated-secret")).status_code == 200


def test_cached_client_revokes_and_introspects_its_own_tokens(make_app, rp):
    """RFC 7009 2.1 / RFC 7662 2.2 with the cache on: a client served from the cache revokes its
    client-credentials token (the revocation row refers to the cached client) and introspection of
    that token then answers inactive; the revocations read no client row."""
    app = make_app(CLIENT_CACHE_SECONDS=30)
    client = app.test_client()
    auth = basic_auth(rp.client_id)
    token = client.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=auth).get_json()

    def revoke_twice():
        for _ in range(2):
            assert client.post("/oauth2/revoke", data={"token": token["access_token"]}, headers=auth).status_code == 200

    assert count_client_selects(app, revoke_twice) == 0
    answer = client.post("/oauth2/introspect", data={"token": token["access_token"]}, headers=auth)
    assert answer.get_json() == {"active": False}
