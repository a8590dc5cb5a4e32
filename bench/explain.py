"""Does each hot statement use an index? EXPLAIN of every statement one request of each kind runs.

    .venv/bin/python bench/explain.py --state-dir /tmp/authy2-bench-scale   # after bench/scale.py's load
    .venv/bin/python bench/explain.py --show                                # print the plans too
    .venv/bin/python bench/explain.py --cost 200                            # what each request costs the database

Runs one request of each hot kind in-process against the bench database (the second of two, warm
caches, as bench/sql_count.py does), and the purge jobs' batch statements (rolled back), recording
every SQL statement with its parameters through a SQLAlchemy `before_cursor_execute` listener. Then
`EXPLAIN (FORMAT JSON)` of each (the plan only: nothing runs twice) with the same parameters, and
PASS when no node of the plan is a sequential scan of a big table (more than BIG_TABLE_ROWS rows by
the planner's statistics; small tables such as oauth_clients are read whole, rightly). INSERTs have
no access path to judge and are listed as such. Exit status 1 when any statement fails.

`--cost N` measures instead what N requests of each kind cost PostgreSQL, a figure the host's load
does not move: every statement is first run under `EXPLAIN (ANALYZE, BUFFERS, WAL)` inside a
savepoint rolled back at once, then for real, and the plans' figures are summed (shared blocks hit
and read, i.e. not in shared buffers, blocks dirtied, WAL records, full-page images and bytes,
execution ms), per request. A cost that grows from 10^3 to 10^6 rows is what makes a rate fall.

Run it with the bench lock held (bench/scale.py does) when it targets authy2_bench.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

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


COST_FIGURES = ("Shared Hit Blocks", "Shared Read Blocks", "Shared Dirtied Blocks", "WAL Records", "WAL FPI",
                "WAL Bytes")


class CostLog:
    """The database's figures of each statement, taken with EXPLAIN ANALYZE in a savepoint just before
    the statement runs (so it runs on the same rows); `statements` as sql_count's log, which the
    request kinds clear before the request they count."""

    def __init__(self):
        self.statements: list[dict] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        if executemany:
            return
        # A statement outside a transaction (an autocommit read) gets one of its own, rolled back.
        outside = cursor.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        cursor.execute("BEGIN" if outside else "SAVEPOINT bench_cost")
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON) " + statement, parameters)
        [result] = cursor.fetchone()[0]
        cursor.execute("ROLLBACK" if outside else "ROLLBACK TO SAVEPOINT bench_cost")
        figures = {name: result["Plan"].get(name, 0) for name in COST_FIGURES}
        figures["Execution Time"] = result["Execution Time"]
        self.statements.append(figures)


def costs(count: int) -> int:
    """Print the mean database cost of a request of each kind over `count` requests."""
    from sqlalchemy import event

    from bench.sql_count import RequestKinds
    from idp import create_app
    from idp.extensions import db

    app = create_app()
    log = CostLog()
    kinds = RequestKinds(app, log)
    print(f"database cost per request, mean of {count} (EXPLAIN ANALYZE BUFFERS WAL of each statement)")
    print(f"{'kind':<26}{'stmts':>6}{'hit':>8}{'read':>7}{'dirtied':>8}{'WAL rec':>8}{'FPI':>6}{'WAL B':>8}{'exec ms':>9}")
    for name, send in kinds.table().items():
        send()  # warm caches, not measured
        with app.app_context():
            event.listen(db.engine, "before_cursor_execute", log)
        totals, statements = dict.fromkeys((*COST_FIGURES, "Execution Time"), 0.0), 0
        for _ in range(count):
            log.statements.clear()
            send()
            statements += len(log.statements)
            for figures in log.statements:
                for key, value in figures.items():
                    totals[key] += value
        with app.app_context():
            event.remove(db.engine, "before_cursor_execute", log)
        mean = {key: value / count for key, value in totals.items()}
        print(f"{name:<26}{statements / count:>6.1f}{mean['Shared Hit Blocks']:>8.1f}{mean['Shared Read Blocks']:>7.2f}"
              f"{mean['Shared Dirtied Blocks']:>8.2f}{mean['WAL Records']:>8.1f}{mean['WAL FPI']:>6.2f}"
              f"{mean['WAL Bytes']:>8.0f}{mean['Execution Time']:>9.3f}")
    return 0


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
    parser.add_argument("--cost", type=int, metavar="N", help="the database's cost per request, mean of N requests")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        return costs(args.cost) if args.cost else inside(args.show)
    from bench.run import reuse_stores

    prepared = reuse_stores(args.state_dir.resolve(), "production")
    return subprocess.call([sys.executable, __file__, "--inner", *(["--show"] if args.show else []),
                            *(["--cost", str(args.cost)] if args.cost else [])], env=prepared.env)


if __name__ == "__main__":
    sys.exit(main())
