"""Keyset ("seek") pagination predicates: the rows after a position in a total order.

Unlike OFFSET, a position survives inserts and deletes before it, so a reader walking the pages
while others write sees every row that existed when it started exactly once.
"""
from __future__ import annotations

from typing import Sequence

from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement


def after(columns: Sequence, values: Sequence, *, descending: bool) -> ColumnElement[bool]:
    """Rows strictly after `values` in the order of `columns` (all DESC or all ASC).

    Written as `c1 <= v1 AND (c1 < v1 OR (c1 = v1 AND ...))` rather than a row-value comparison, so
    an index on the first column alone bounds the scan on both SQLite and PostgreSQL.
    """
    first, value = columns[0], values[0]
    bound = first <= value if descending else first >= value
    return and_(bound, _strictly_after(columns, values, descending))


def _strictly_after(columns: Sequence, values: Sequence, descending: bool) -> ColumnElement[bool]:
    column, value = columns[0], values[0]
    beyond = column < value if descending else column > value
    if len(columns) == 1:
        return beyond
    return or_(beyond, and_(column == value, _strictly_after(columns[1:], values[1:], descending)))


def order_by(columns: Sequence, *, descending: bool) -> list:
    """The ORDER BY matching `after`."""
    return [column.desc() if descending else column.asc() for column in columns]
