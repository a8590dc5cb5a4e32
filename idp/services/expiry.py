"""Deleting dead rows a bounded batch at a time, so a purge never holds one huge transaction.

Each call deletes at most `limit` rows: `DELETE ... WHERE <pk> IN (SELECT <pk> ... WHERE <dead> ORDER BY
expires_at LIMIT n)`, which SQLite and PostgreSQL both accept. Oldest first: the order makes PostgreSQL
read the candidates through the index on expires_at whatever share of the table is dead (without it,
a table that is mostly expired is read by a sequential scan, which slows down as dead rows pile up
at its start), and a batch stops after `limit` index entries. The job runner (idp.jobs) commits after each call and calls again while a batch was full.
"""
from __future__ import annotations

from typing import Callable

from flask import current_app
from sqlalchemy import ColumnElement, Table, delete, select

from idp.extensions import db


def batch_size(limit: int | None = None) -> int:
    """`limit`, else the configured JOB_PURGE_BATCH."""
    return limit if limit is not None else current_app.config["JOB_PURGE_BATCH"]


def delete_batch(table: Table, dead: ColumnElement[bool], limit: int) -> int:
    """Delete at most `limit` rows of `table` matching `dead`, oldest expires_at first; returns how many went."""
    if limit <= 0:
        return 0
    [key] = table.primary_key.columns
    candidates = select(key).where(dead).order_by(table.c.expires_at).limit(limit).scalar_subquery()
    return db.session.execute(delete(table).where(key.in_(candidates)),
                              execution_options={"synchronize_session": False}).rowcount


def delete_batches(dead_rows: list[tuple[Table, ColumnElement[bool]]], limit: int) -> int:
    """Delete at most `limit` rows in all, table after table (the next table gets what is left)."""
    count = 0
    for table, dead in dead_rows:
        count += delete_batch(table, dead, limit - count)
    return count


def purge_in_batches(purge: Callable[..., int]) -> int:
    """Call `purge(limit=JOB_PURGE_BATCH)` and commit, again while a batch came back full, at most
    JOB_PURGE_MAX_BATCHES times (the rest waits for the next run); returns the rows deleted.

    Each batch is its own short transaction, so a backlog of millions of rows never holds one long
    lock or one huge WAL record, and live traffic interleaves with the purge.
    """
    limit, batches = current_app.config["JOB_PURGE_BATCH"], current_app.config["JOB_PURGE_MAX_BATCHES"]
    total = 0
    for _ in range(batches):
        count = purge(limit=limit)
        db.session.commit()
        total += count
        if count < limit:
            break
    return total
