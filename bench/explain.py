"""Does each hot statement use an index? EXPLAIN of every statement one request of each kind runs.

    .venv/bin/python bench/explain.py --state-dir /tmp/authy2-bench-scale   # after bench/scale.py's load
    .venv/bin/python bench/explain.py --show                                # print the plans too

Runs one request of each hot kind in-process against the bench database (the second of two, warm
caches, as bench/sql_count.py does), and the purge jobs' batch statements (rolled back), recording
every SQL statement with its parameters through a SQLAlchemy `before_cursor_execute` listener. Then
`EXPLAIN (FORMAT JSON)` of each (the plan only: nothing runs twice) with the same parameters, and
PASS when no node of the plan is a sequential scan of a big table (more than BIG_TABLE_ROWS rows by
the planner's statistics; small tables such as oauth_clients are read whole, rightly). INSERTs have
no access path to judge and are listed as such. Exit status 1 when any statement fails.

Run it with the bench lock held (bench/scale.py does) when it targets authy2_bench.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BIG_TABLE_ROWS = 10_000


@dataclass
class Captured:
    kind: str
    statement: str
    parameters: object


class ParameterLog:
    """The statements (with parameters) executed while `kind` was being measured."""

    def __init__(self):
        self.kind = ""
        self.statements: list[Captured] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        if not executemany:
            self.statements.append(Captured(self.kind, statement, parameters))


def scans(plan: dict) -> list[tuple[str, str]]:
    """(node type, relation) of every node that reads a table or index, depth first."""
    found = []
    if "Relation Name" in plan:
        found.append((plan["Node Type"], plan["Relation Name"]))
    for child in plan.get("Plans", []):
        found.extend(scans(child))
    return found


def judge(connection, captured: Captured, sizes: dict[str, int]) -> tuple[str, list[tuple[str, str]], dict | None]:
    """PASS, FAIL or n/a (INSERT) for one statement; the scans and the plan."""
    if captured.statement.lstrip().upper().startswith("INSERT"):
        return "n/a", [], None
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + captured.statement, captured.parameters)
        [[plan_json]] = cursor.fetchall()
    plan = (plan_json if isinstance(plan_json, list) else json.loads(plan_json))[0]["Plan"]
    found = scans(plan)
    big_seq = [relation for node, relation in found if node == "Seq Scan" and sizes.get(relation, 0) > BIG_TABLE_ROWS]
    return ("FAIL" if big_seq else "PASS"), found, plan


def capture(app) -> list[Captured]:
    """One request of each hot kind, and one batch of each purge (rolled back)."""
    from sqlalchemy import event

    from bench.sql_count import RequestKinds
    from idp.extensions import db
    from idp.services import authorization_requests, pending_links, replay, sessions, tokens, upstream_logins
    from idp.services.cache import get_counters

    log = ParameterLog()
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", log)
    kinds = RequestKinds(app, log)
    results = []
    for name, send in kinds.table().items():
        send()
        log.kind, log.statements = name, []
        send()
        results.extend(log.statements)
    purges = {"purge tokens and codes": tokens.purge_expired,
              "purge pending requests": authorization_requests.purge_expired,
              "expire stale sessions": sessions.expire_stale, "purge ended sessions": sessions.purge_ended,
              "purge upstream logins": upstream_logins.purge_expired, "purge pending links": pending_links.purge_expired,
              "purge seen assertions": replay.purge_expired,
              "purge counters": lambda limit: get_counters().database.purge_expired(limit)}
    with app.app_context():
        for name, purge in purges.items():
            log.kind, log.statements = name, []
            purge(limit=app.config["JOB_PURGE_BATCH"])
            db.session.rollback()
            results.extend(log.statements)
    with app.app_context():
        event.remove(db.engine, "before_cursor_execute", log)
    return results


def inside(show: bool) -> int:
    from sqlalchemy import text

    from idp import create_app
    from idp.extensions import db

    app = create_app()
    captured = capture(app)
    failures = 0
    with app.app_context():
        sizes = {name: int(rows) for name, rows in db.session.execute(text(
            "SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"))}
        raw = db.engine.raw_connection()
        try:
            print(f"EXPLAIN of {len(captured)} statements (big table: more than {BIG_TABLE_ROWS:,} rows; "
                  f"users {sizes.get('users', 0):,}, sessions {sizes.get('sessions', 0):,}, "
                  f"access_tokens {sizes.get('access_tokens', 0):,}, refresh_tokens {sizes.get('refresh_tokens', 0):,}, "
                  f"authorization_codes {sizes.get('authorization_codes', 0):,})")
            for item in captured:
                verdict, found, plan = judge(raw.driver_connection, item, sizes)
                raw.driver_connection.rollback()
                failures += verdict == "FAIL"
                reads = ", ".join(f"{node} on {relation}" for node, relation in found) or "-"
                sql = " ".join(item.statement.split())
                print(f"{verdict:<5} {item.kind:<26} {reads}\n      {sql[:160]}")
                if show and plan is not None:
                    print(json.dumps(plan, indent=1))
        finally:
            raw.close()
    print(f"\nhot statements use an index: {'PASS' if not failures else f'FAIL ({failures} statement(s))'}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=Path("/tmp/authy2-bench-scale"),
                        help="run.py's state directory: the keys and secrets the database was seeded under")
    parser.add_argument("--show", action="store_true", help="print each plan")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        return inside(args.show)
    from bench.run import reuse_stores

    prepared = reuse_stores(args.state_dir.resolve(), "production")
    return subprocess.call([sys.executable, __file__, "--inner", *(["--show"] if args.show else [])],
                           env=prepared.env)


if __name__ == "__main__":
    sys.exit(main())
