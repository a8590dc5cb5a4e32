"""Statements committed at once, whatever the request's own transaction decides later.

Counters and replay keys must outlive a refused request (idp.requests rolls back every answer >= 400:
a failed sign-in still counts, a presented assertion is still spent), so they run on a connection of
their own, committed at once. SQLite has a single writer, though: while the request's transaction
holds the write lock a second connection would wait for it until the busy timeout, so there the
statement joins the request's transaction and is replayed on its own connection if that transaction
does not commit.
"""
from __future__ import annotations

import logging
from typing import Callable, TypeVar

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Result
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session as OrmSession

from idp.extensions import db

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Statements that joined the request's SQLite transaction, replayed if it does not commit.
_JOINED = "idp.own_transaction.joined"
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def upsert(table):
    """INSERT ... ON CONFLICT for the database in use (PostgreSQL and SQLite 3.35+ both have it)."""
    return _INSERTS[db.engine.dialect.name](table)


def execute_committed(statement, read: Callable[[Result], T] = lambda result: None) -> T:
    """Run `statement` in a transaction committed at once; `read` takes what it needs from the result."""
    joined = _writing_sqlite_connection()
    if joined is not None:
        db.session.info.setdefault(_JOINED, []).append(statement)
        return read(joined.execute(statement))
    with db.engine.begin() as connection:
        return read(connection.execute(statement))


def _writing_sqlite_connection() -> Connection | None:
    """The request session's connection when it is SQLite and holds the write lock, else None."""
    if db.engine.dialect.name != "sqlite" or not db.session.registry.has() or not db.session().in_transaction():
        return None
    connection = db.session.connection()
    return connection if connection.connection.dbapi_connection.in_transaction else None


@event.listens_for(OrmSession, "after_commit")
def _forget_joined(session) -> None:
    if session.get_nested_transaction() is None:
        session.info.pop(_JOINED, None)


@event.listens_for(OrmSession, "after_transaction_end")
def _replay_joined(session, transaction) -> None:
    """The request's transaction ended without a commit: write what joined it on its own."""
    if transaction.parent is not None or _JOINED not in session.info:
        return
    for statement in session.info.pop(_JOINED):
        try:
            with session.get_bind().begin() as connection:
                connection.execute(statement)
        except SQLAlchemyError as error:  # a replay key spent meanwhile by another worker: still spent
            logger.info("replaying a committed write after rollback: %s", type(error).__name__)
