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
