"""idp.jobs: the job registry and the send_pending_mail retry job."""
from __future__ import annotations

import socket

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.jobs import JOBS, run_job
from idp.models import ContactEnquiry, DeliveryStatus
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
