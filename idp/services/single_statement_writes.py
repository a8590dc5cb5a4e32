"""Requests whose every write stands alone run in autocommit on PostgreSQL: no BEGIN, no COMMIT.

psycopg opens a transaction with a BEGIN round trip of its own and ends it with a COMMIT round trip,
so a request that reads one row and writes one statement waits on the database four times for two
statements (and under gunicorn each wait gives the core away). When every write of a request is one
statement that is complete by itself, nothing later in the request has an earlier write to undo, and
autocommit gives the same outcome in two waits. SQLite keeps the request's transaction: some writes
there are two statements (audit.record_with).
"""
from __future__ import annotations

from idp.extensions import db

AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


def writes_stand_alone() -> None:
    """Run this request's statements each committed on its own (PostgreSQL; before the first one).

    A session whose transaction already began keeps it: its statements may belong together. The
    connection returns to the pool at its default isolation level (SQLAlchemy resets it on checkin).
    """
    session = db.session()
    if db.engine.dialect.name != "postgresql" or session.in_transaction():
        return
    session.connection(execution_options=AUTOCOMMIT)
