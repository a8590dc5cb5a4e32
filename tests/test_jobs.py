"""idp.jobs: the job registry, the send_pending_mail retry job, and the purges' bounded batches."""
from __future__ import annotations

import socket
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event, func, insert, select

from idp.extensions import db
from idp.jobs import JOBS, run_job
from idp.models import (AccessToken, AuthorizationCode, AuthorizationRequest, ContactEnquiry, Counter, DeliveryStatus,
                        RefreshToken, SeenAssertion, Session, SessionStatus, utcnow)
from idp.services.contact import MAX_DELIVERY_ATTEMPTS


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def add_pending(app, count: int = 1, attempts: int = 1) -> list[str]:
    with app.app_context():
        rows = [ContactEnquiry(name=f"Person {n}", email=f"p{n}@example.com", type="general", message=f"Hello {n}",
                               status=DeliveryStatus.PENDING.value, attempts=attempts) for n in range(count)]
        db.session.add_all(rows)
        db.session.commit()
        return [row.id for row in rows]


def rows(app) -> dict[str, ContactEnquiry]:
    with app.app_context():
        return {row.id: row for row in db.session.scalars(select(ContactEnquiry))}


@pytest.fixture
def down_app(make_app):
    return make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port(), SMTP_TIMEOUT=2)


def test_send_pending_mail_is_registered():
    """The job runner knows send_pending_mail by name."""
    assert "send_pending_mail" in JOBS and "cleanup_sessions" in JOBS


def test_job_sends_every_pending_enquiry_once(make_app, smtp_sink):
    """Each PENDING enquiry is mailed to CONTACT_EMAIL and marked SENT; a second round sends nothing."""
    app = make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, CONTACT_EMAIL="team@authy2.test")
    ids = add_pending(app, 3)
    with app.app_context():
        assert run_job("send_pending_mail") == ["send_pending_mail: sent 3 enquiry mail(s)"]
        assert run_job("send_pending_mail") == ["send_pending_mail: sent 0 enquiry mail(s)"]
    assert len(smtp_sink.wait_for(3)) == 3
    assert all(row.status == "SENT" and row.attempts == 2 for row in rows(app).values())
    assert {e.rcpt_tos[0] for e in smtp_sink.envelopes} == {"team@authy2.test"} and len(ids) == 3


def test_round_stops_at_the_first_failure(down_app):
    """With mail down, one attempt is spent per round, not one per waiting enquiry."""
    add_pending(down_app, 3)
    with down_app.app_context():
        [line] = run_job("send_pending_mail")
    assert "still failing" in line
    assert sorted(row.attempts for row in rows(down_app).values()) == [1, 1, 2]


def test_retries_are_bounded(down_app, make_app, smtp_sink):
    """After MAX_DELIVERY_ATTEMPTS failures an enquiry is left PENDING and never retried."""
    [enquiry_id] = add_pending(down_app, 1, attempts=MAX_DELIVERY_ATTEMPTS - 1)
    with down_app.app_context():
        run_job("send_pending_mail")
        run_job("send_pending_mail")
    row = rows(down_app)[enquiry_id]
    assert row.attempts == MAX_DELIVERY_ATTEMPTS and row.status == "PENDING" and row.last_error
    up = make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port)
    with up.app_context():
        assert run_job("send_pending_mail") == ["send_pending_mail: sent 0 enquiry mail(s)"]
    assert smtp_sink.messages == []


def test_run_all_includes_mail_and_unknown_jobs_are_refused(app):
    """'all' runs every job, one report line each; an unknown name raises KeyError listing the known ones."""
    with app.app_context():
        lines = run_job("all")
    assert [line.split(":")[0] for line in lines] == list(JOBS)
    with pytest.raises(KeyError, match="send_pending_mail"):
        run_job("nope")


def test_cli_runs_the_job_once(make_app, smtp_sink):
    """`flask run-jobs --job send_pending_mail --once` sends and reports."""
    app = make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port)
    add_pending(app, 1)
    result = app.test_cli_runner().invoke(args=["run-jobs", "--job", "send_pending_mail", "--once"])
    assert result.exit_code == 0 and "sent 1 enquiry mail(s)" in result.output
    assert len(smtp_sink.wait_for(1)) == 1


# -- purges in bounded batches --
BATCH = 3


@pytest.fixture
def batch_app(make_app):
    return make_app(JOB_PURGE_BATCH=BATCH, REDIS_URL=None)


class DeleteLog:
    """Rows each DELETE statement removed, in order."""

    def __init__(self, app):
        self.rows: list[int] = []
        with app.app_context():
            event.listen(db.engine, "after_cursor_execute", self)

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("DELETE"):
            self.rows.append(cursor.rowcount)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def token_rows(client_id: str, user_id: str, n: int, *, expires_in: timedelta, session_id: str | None = None,
               revoked: bool = False) -> None:
    now = utcnow()
    common = {"oauth_client_id": client_id, "user_id": user_id, "session_id": session_id, "scope": "openid",
              "issued_at": now - timedelta(days=40), "expires_at": now + expires_in,
              "revoked_at": now if revoked else None}
    db.session.execute(insert(AccessToken), [{"id": str(uuid.uuid4()), "jti": uuid.uuid4().hex, **common}
                                             for _ in range(n)])
    db.session.execute(insert(RefreshToken), [{"id": str(uuid.uuid4()), "token_hash": uuid.uuid4().hex, **common}
                                              for _ in range(n)])
    db.session.execute(insert(AuthorizationCode), [{
        "id": str(uuid.uuid4()), "code_hash": uuid.uuid4().hex, "oauth_client_id": client_id, "user_id": user_id,
        "redirect_uri": "https://rp.example/callback", "scope": "openid", "auth_time": now,
        "created_at": now - timedelta(days=40), "expires_at": now + expires_in} for _ in range(n)])
    db.session.commit()


def session_row(user_id: str, expires_in: timedelta, status: str = SessionStatus.ACTIVE.value) -> str:
    now = utcnow()
    session_id = str(uuid.uuid4())
    db.session.execute(insert(Session).values(
        id=session_id, user_id=user_id, token_hash=uuid.uuid4().hex, kind="browser", status=status,
        created_at=now - timedelta(days=40), last_seen_at=now, auth_time=now, expires_at=now + expires_in,
        absolute_expires_at=now + expires_in))
    db.session.commit()
    return session_id


def test_expired_codes_and_tokens_go_in_batches_and_live_ones_stay(batch_app, factories):
    """10 expired rows of each kind (revoked or not) with a batch of 3: every statement deletes at most 3
    rows, the run deletes all 30 plus the expired pending requests, and live rows (revoked or not) stay."""
    client, user = factories.client(), factories.user()
    log = DeleteLog(batch_app)
    with batch_app.app_context():
        token_rows(client.id, user.id, 6, expires_in=-timedelta(hours=1))
        token_rows(client.id, user.id, 4, expires_in=-timedelta(days=1), revoked=True)
        token_rows(client.id, user.id, 2, expires_in=timedelta(hours=1))
        token_rows(client.id, user.id, 1, expires_in=timedelta(days=1), revoked=True)
        db.session.execute(insert(AuthorizationRequest), [
            {"id": f"req-{n}", "oauth_client_id": client.id, "params": {}, "created_at": utcnow(),
             "expires_at": utcnow() + timedelta(minutes=-1 if n < 5 else 1)} for n in range(7)])
        db.session.commit()
        assert run_job("purge_expired_grants") == ["purge_expired_grants: deleted 35 expired code/token/request row(s)"]
        assert [count(m) for m in (AccessToken, RefreshToken, AuthorizationCode, AuthorizationRequest)] == [3, 3, 3, 2]
        assert db.session.scalar(select(func.min(AccessToken.expires_at))) > utcnow()
    assert log.rows and max(log.rows) == BATCH and sum(log.rows) == 35


def test_a_run_stops_at_its_batch_cap_and_the_next_run_goes_on(make_app, factories):
    """JOB_PURGE_MAX_BATCHES bounds one run per purge: 2 batches of 3 leave 4 of 10 for the next run."""
    app = make_app(JOB_PURGE_BATCH=BATCH, JOB_PURGE_MAX_BATCHES=2)
    client = factories.client()
    with app.app_context():
        db.session.execute(insert(AuthorizationRequest), [
            {"id": f"req-{n}", "oauth_client_id": client.id, "params": {}, "created_at": utcnow(),
             "expires_at": utcnow() - timedelta(minutes=1)} for n in range(10)])
        db.session.commit()
        assert run_job("purge_expired_grants") == ["purge_expired_grants: deleted 6 expired code/token/request row(s)"]
        assert count(AuthorizationRequest) == 4
        assert run_job("purge_expired_grants") == ["purge_expired_grants: deleted 4 expired code/token/request row(s)"]
        assert count(AuthorizationRequest) == 0


def offline_token(client_id: str, user_id: str, session_id: str) -> str:
    token_id = str(uuid.uuid4())
    db.session.execute(insert(RefreshToken).values(
        id=token_id, token_hash=uuid.uuid4().hex, oauth_client_id=client_id, user_id=user_id, session_id=session_id,
        scope="openid offline_access", issued_at=utcnow(), expires_at=utcnow() + timedelta(days=20)))
    db.session.commit()
    return token_id


def test_sessions_are_deleted_after_their_retention_in_batches(batch_app, factories):
    """Sessions expired (or revoked) longer than SESSION_RETENTION ago go, at most 3 per DELETE; a recently
    expired one is only marked EXPIRED and a live one is untouched."""
    user = factories.user()
    retention = timedelta(seconds=batch_app.config["SESSION_RETENTION"])
    log = DeleteLog(batch_app)
    with batch_app.app_context():
        for _ in range(5):
            session_row(user.id, -retention - timedelta(hours=1))
        for _ in range(3):
            session_row(user.id, -retention - timedelta(days=1), SessionStatus.REVOKED.value)
        recent = session_row(user.id, -timedelta(hours=1))
        live = session_row(user.id, timedelta(minutes=10))
        assert run_job("cleanup_sessions") == [
            "cleanup_sessions: marked 6 session(s) EXPIRED, deleted 8 ended session(s)"]
        left = dict(db.session.execute(select(Session.id, Session.status)).tuples().all())
    assert left == {recent: "EXPIRED", live: "ACTIVE"}
    assert max(log.rows) == BATCH and sum(log.rows) == 8


def test_deleting_an_old_session_leaves_its_tokens_as_they_were(batch_app, factories):
    """A refresh token outliving an expired session still works once the row is gone; one issued under a
    revoked session was refused for that, and is revoked outright before the row goes, so it stays refused."""
    user, client = factories.user(), factories.client()
    long_ago = -timedelta(seconds=batch_app.config["SESSION_RETENTION"]) - timedelta(hours=1)
    with batch_app.app_context():
        expired = offline_token(client.id, user.id, session_row(user.id, long_ago, SessionStatus.EXPIRED.value))
        revoked = offline_token(client.id, user.id, session_row(user.id, long_ago, SessionStatus.REVOKED.value))
        assert [db.session.get(RefreshToken, t).is_revoked() for t in (expired, revoked)] == [False, True]
        db.session.expunge_all()
        assert run_job("cleanup_sessions") == ["cleanup_sessions: marked 0 session(s) EXPIRED, deleted 2 ended session(s)"]
        assert count(Session) == 0
        assert [db.session.get(RefreshToken, t).is_revoked() for t in (expired, revoked)] == [False, True]


def test_counters_and_seen_assertions_go_in_batches(batch_app):
    """Expired database counters and seen assertions are deleted a batch at a time; unexpired ones stay."""
    now = utcnow()
    log = DeleteLog(batch_app)
    with batch_app.app_context():
        db.session.execute(insert(Counter), [{"key": f"k{n}", "value": 1,
                                              "expires_at": now + timedelta(minutes=-1 if n < 7 else 1)}
                                             for n in range(9)])
        db.session.execute(insert(SeenAssertion), [{"key_hash": f"h{n}",
                                                    "expires_at": now + timedelta(minutes=-1 if n < 4 else 1)}
                                                   for n in range(5)])
        db.session.commit()
        assert run_job("purge_counters") == ["purge_counters: deleted 7 expired counter(s)"]
        assert run_job("purge_federation") == [
            "purge_federation: deleted 0 upstream login(s), 0 pending link(s), 4 seen assertion(s)"]
        assert count(Counter) == 2 and count(SeenAssertion) == 1
    assert max(log.rows) == BATCH and sum(log.rows) == 11
