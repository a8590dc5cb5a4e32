"""The one audit function. Successes join the caller's transaction; failures survive its rollback."""
from __future__ import annotations

from functools import cache

from flask import g, has_request_context, request
from sqlalchemy import bindparam, insert, select
from sqlalchemy.sql import Executable

from idp.extensions import db
from idp.models import AuditEvent
from idp.models.base import new_id, utcnow
from idp.security.client_ip import client_ip

FORBIDDEN_DETAIL_KEYS = {"password", "token", "secret", "client_secret", "code", "refresh_token", "access_token"}


def _context() -> dict:
    if not has_request_context():
        return {}
    return {
        "ip_address": client_ip(),
        "user_agent": (request.headers.get("User-Agent") or "")[:512] or None,
        "request_id": getattr(g, "request_id", None),
    }


def _columns(action: str, outcome: str, actor_user_id, target_type, target_id, organization_id, details) -> dict:
    clean = {k: v for k, v in (details or {}).items() if k not in FORBIDDEN_DETAIL_KEYS}
    return dict(action=action, outcome=outcome, actor_user_id=actor_user_id, target_type=target_type,
                target_id=target_id, organization_id=organization_id, details=clean or None, **_context())


def _event(*args) -> AuditEvent:
    return AuditEvent(**_columns(*args))


_INSERT_EVENT = insert(AuditEvent.__table__)


def record(action: str, *, actor_user_id: str | None = None, target_type: str | None = None,
           target_id: str | None = None, organization_id: str | None = None,
           details: dict | None = None) -> None:
    """Record a successful action in the current transaction, so it commits with the change.

    A plain INSERT rather than an ORM object: audit rows are write-only, and the unit of work's
    bookkeeping for them was a measurable share of the authorize hot path.
    """
    row = _columns(action, "success", actor_user_id, target_type, target_id, organization_id, details)
    db.session.execute(_INSERT_EVENT, {"id": new_id(), "created_at": utcnow(), **row})


def record_with(statement: Executable, values: dict, action: str, *, actor_user_id: str | None = None,
                target_type: str | None = None, target_id: str | None = None,
                organization_id: str | None = None, details: dict | None = None) -> None:
    """Run `statement` (an INSERT built once) with `values`, which name every column that has a
    Python-side default, and record a successful `action` with it.

    On PostgreSQL one statement: the audit INSERT rides in a WITH of the other (a data-modifying WITH
    always runs), so the write and its audit row are one round trip, atomic together; SQLite has no
    data-modifying WITH, so there they are two statements of the same transaction.
    """
    row = {"id": new_id(), "created_at": utcnow(),
           **_columns(action, "success", actor_user_id, target_type, target_id, organization_id, details)}
    if db.session.get_bind().dialect.name != "postgresql":
        db.session.execute(statement, values)
        db.session.execute(_INSERT_EVENT, row)
        return
    db.session.execute(_with_event(statement), {**values, **_bound_event(row)})


def record_with_actor_of(statement: Executable, values: dict, source, action: str, *,
                         target_type: str | None = None, target_id: str | None = None,
                         organization_id: str | None = None, details: dict | None = None):
    """PostgreSQL: run `statement` (built once) with `values` and record a successful `action` in its
    WITH, one audit row per row of `source` (a CTE of the statement), whose `user_id` is the actor:
    the actor is known only once the statement has read it. Returns the statement's result."""
    row = {"id": new_id(), "created_at": utcnow(),
           **_columns(action, "success", None, target_type, target_id, organization_id, details)}
    return db.session.execute(_with_event_of(statement, source), {**values, **_bound_event(row, "actor_user_id")})


_EVENT_PREFIX = "audit_event_"


def _bound_event(row: dict, *taken_from_statement: str) -> dict:
    """The audit row's values under the bind names of _with_event and _with_event_of."""
    return {f"{_EVENT_PREFIX}{column.name}": row.get(column.name) for column in AuditEvent.__table__.columns
            if column.name not in taken_from_statement}


@cache
def _with_event_of(statement: Executable, source) -> Executable:
    """`statement` with an audit INSERT of one row per `source` row in its WITH: the actor from the
    row's `user_id`, every other event column bound under its own name."""
    table = AuditEvent.__table__
    bound = [column for column in table.columns if column.name != "actor_user_id"]
    rows = select(*[bindparam(f"{_EVENT_PREFIX}{column.name}", type_=column.type) for column in bound],
                  source.c.user_id).select_from(source)
    event = insert(table).from_select([*[column.name for column in bound], "actor_user_id"], rows)
    return statement.add_cte(event.cte("audit_event"))


@cache
def _with_event(statement: Executable) -> Executable:
    """`statement` with the audit INSERT in its WITH, every event column bound under its own name
    (built once per statement: SQLAlchemy memoizes its cache key on the object)."""
    table = AuditEvent.__table__
    event = insert(table).values({column.name: bindparam(f"{_EVENT_PREFIX}{column.name}", type_=column.type)
                                  for column in table.columns})
    return statement.add_cte(event.cte("audit_event"))


def record_failure(action: str, *, actor_user_id: str | None = None, target_type: str | None = None,
                   target_id: str | None = None, organization_id: str | None = None,
                   details: dict | None = None) -> None:
    """Record a refused action; written after the request's rollback, so it is never lost with it."""
    event = _event(action, "failure", actor_user_id, target_type, target_id, organization_id, details)
    if has_request_context():
        g.setdefault("audit_failures", []).append(event)
    else:
        db.session.add(event)
        db.session.commit()


def pending_failures() -> list[AuditEvent]:
    """Failure events recorded during this request and not yet written."""
    return g.pop("audit_failures", []) if has_request_context() else []


def changed_fields(before: dict, after: dict) -> list[str]:
    """The names of the fields whose values differ between two snapshots, sorted (for the `changed`
    of audit details: names only, never the values)."""
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
