"""The per-process client cache: the token endpoint reads a client once per CLIENT_CACHE_SECONDS, and
a client change reaches every worker within a second (at once with Redis)."""
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
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


def _deactivate(app, client_id: str, announce: bool = True) -> None:
    """Deactivate a client as the services do: the change is announced to the caches after COMMIT."""
    from idp.services.client_generation import client_changed

    with app.app_context():
        db.session.get(OAuthClient, client_id).is_active = False
        if announce:
            client_changed()
        db.session.commit()


def _token(http, rp):
    return http.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=basic_auth(rp.client_id))


def test_a_change_in_this_process_is_seen_at_once(make_app, rp):
    """Without Redis too: a client change committed by this process drops its cached entry at once."""
    app = make_app(CLIENT_CACHE_SECONDS=30, REDIS_URL=None)
    http = app.test_client()
    assert _token(http, rp).status_code == 200
    _deactivate(app, rp.id)
    assert _token(http, rp).status_code == 401


def test_without_redis_another_worker_sees_a_change_within_a_second(make_app, rp):
    """Without Redis a worker cannot hear of other workers' changes: it serves a cached client for at
    most one second (UNCHECKED_SECONDS), whatever CLIENT_CACHE_SECONDS says."""
    from idp.oidc.client_cache import UNCHECKED_SECONDS

    writer, reader = make_app(REDIS_URL=None), make_app(CLIENT_CACHE_SECONDS=30, REDIS_URL=None)
    http = reader.test_client()
    with time_machine.travel(datetime.now(timezone.utc), tick=False) as traveller:
        assert _token(http, rp).status_code == 200
        _deactivate(writer, rp.id)
        assert _token(http, rp).status_code == 200  # the stated staleness, in another process
        traveller.shift(timedelta(seconds=UNCHECKED_SECONDS))
        assert _token(http, rp).status_code == 401


def test_a_worker_that_cannot_reach_redis_trusts_entries_a_second_only(make_app, rp):
    """Redis configured but down (nothing listens): lookups fall back to the one-second rule."""
    reader = make_app(CLIENT_CACHE_SECONDS=30, REDIS_URL="redis://127.0.0.1:1/0")
    http = reader.test_client()
    with time_machine.travel(datetime.now(timezone.utc), tick=False) as traveller:
        assert _token(http, rp).status_code == 200
        _deactivate(make_app(REDIS_URL=None), rp.id)
        traveller.shift(timedelta(seconds=1))
        assert _token(http, rp).status_code == 401


def test_a_rolled_back_change_announces_nothing(make_app, rp):
    """client_changed() in a transaction that rolls back leaves every cache as it was."""
    from idp.services.client_generation import client_changed, current_generation

    app = make_app(CLIENT_CACHE_SECONDS=30, REDIS_URL=None)
    with app.app_context():
        before = current_generation()
        db.session.get(OAuthClient, rp.id).is_active = False
        db.session.flush()
        client_changed()
        db.session.rollback()
        db.session.commit()
        assert current_generation() == before


@pytest.mark.redis
def test_with_redis_another_worker_sees_a_change_at_once(make_app, rp):
    """With Redis, a change committed by one worker (app) is seen by another's very next lookup."""
    writer, reader = make_app(), make_app(CLIENT_CACHE_SECONDS=30)
    http = reader.test_client()
    assert _token(http, rp).status_code == 200
    assert _token(http, rp).status_code == 200
    _deactivate(writer, rp.id)
    assert _token(http, rp).status_code == 401


@pytest.mark.redis
def test_a_change_behind_the_services_waits_for_expiry_even_with_redis(make_app, rp):
    """A row changed without announcing it (by hand, in SQL) is served until CLIENT_CACHE_SECONDS ends."""
    reader = make_app(CLIENT_CACHE_SECONDS=30)
    http = reader.test_client()
    assert _token(http, rp).status_code == 200
    _deactivate(make_app(), rp.id, announce=False)
    assert _token(http, rp).status_code == 200
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(seconds=31)):
        assert _token(http, rp).status_code == 401


@pytest.mark.redis
def test_a_generation_connection_closed_by_redis_is_replaced(make_app, rp):
    """The generation is read on a connection of the worker thread's own; when Redis closes it (a
    restart, an idle timeout), the next lookup reconnects: Redis does not count as down, and a
    change announced meanwhile is still seen at once."""
    from idp.services.cache import get_redis

    writer, reader = make_app(), make_app(CLIENT_CACHE_SECONDS=30)
    http = reader.test_client()
    assert _token(http, rp).status_code == 200
    own = reader.extensions["client_generation_reader"]._local.connection
    own.send_command("CLIENT", "ID")
    with reader.app_context():
        guard = get_redis()
        assert guard.client.client_kill_filter(_id=own.read_response()) == 1
    _deactivate(writer, rp.id)
    assert _token(http, rp).status_code == 401
    assert not guard.is_down


@pytest.mark.redis
def test_a_change_announced_by_another_node_is_seen_after_one_recheck(make_app, rp):
    """A change announced on Redis by another process (the generation key set, as its commit does)
    reaches this worker once SHARED_RECHECK_SECONDS have passed since its last read of the key: well
    within the second the two-node setup promises, without a Redis GET per token request."""
    import time

    from idp.services.cache import get_redis
    from idp.services.client_generation import GENERATION_KEY, SHARED_RECHECK_SECONDS

    reader = make_app(CLIENT_CACHE_SECONDS=30)
    http = reader.test_client()
    assert _token(http, rp).status_code == 200
    _deactivate(make_app(), rp.id, announce=False)
    with reader.app_context():
        get_redis().client.set(GENERATION_KEY, "set-by-another-node")
    time.sleep(SHARED_RECHECK_SECONDS)
    assert _token(http, rp).status_code == 401


def test_each_cached_copy_is_the_row_detached_and_its_own(make_app, rp):
    """A copy served from the cache is the client row as a detached instance (its identity, nothing
    left to load: attached to a session it reads without a SELECT), and a request editing its copy's
    redirect URIs or name changes neither the cache nor the next request's copy."""
    from sqlalchemy import inspect

    from idp.oidc.client_cache import ClientCache
    from idp.services.client_generation import current_generation

    app = make_app(CLIENT_CACHE_SECONDS=30)
    with app.app_context():
        row = db.session.get(OAuthClient, rp.id)
        redirect_uris, name = list(row.redirect_uris), row.name
        cache, generation = ClientCache(30), current_generation()
        cache.put(row, generation)
        first = cache.get(rp.client_id, generation)
        assert inspect(first).detached and inspect(first).key == inspect(row).key
        first.redirect_uris.append("https://elsewhere.example/cb")
        first.name = "Edited by one request"
        second = cache.get(rp.client_id, generation)
        assert (second.redirect_uris, second.name) == (redirect_uris, name)
        db.session.expunge(row)
        db.session.add(second)
        assert count_client_selects(app, lambda: (second.redirect_uris, second.grant_types, second.name)) == 0
        assert inspect(second).persistent and not db.session.dirty


def test_request_session_removed_at_teardown_whether_opened_or_not(make_app, rp):
    """A token request that reads the client from the database opens the ORM session and closes it at
    app-context teardown; one served from the cache never opens one, and its teardown leaves none
    behind either (no session, and so no pooled connection, outlives its request)."""
    app = make_app(CLIENT_CACHE_SECONDS=30)
    client = app.test_client()
    registry = db.session.registry.registry
    scopes_before = set(registry)
    opened = []

    def note_open(session, transaction, connection):
        opened.append(session)

    event.listen(db.session, "after_begin", note_open)
    try:
        for _ in range(2):
            assert client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                               headers=basic_auth(rp.client_id)).status_code == 200
            assert set(registry) == scopes_before
    finally:
        event.remove(db.session, "after_begin", note_open)
    assert len(opened) == 1  # the first request's client SELECT; the second was served from the cache
