"""Fill the bench database with a million users and sessions and ten million token rows, fast.

    .venv/bin/python bench/bulk_load.py                       # 10^6 users, 10^6 sessions, 10^7 token rows
    .venv/bin/python bench/bulk_load.py --users 1000 --sessions 1000 --tokens 10000

Not through the API or the ORM: each table is filled by one `INSERT ... SELECT FROM generate_series(...)`
that PostgreSQL runs on its own, so no row crosses the wire. Ids are uuids made from md5 of the row
number (`md5('u' || n)::uuid`), so a token names its user, session and grant by recomputing the same
expression, with no join; foreign-key triggers are off for the load (`session_replication_role =
replica`), which is safe because every id so named exists. The secondary indexes and the unique and
primary-key constraints of the token tables and sessions (users: all but its primary key, which foreign
keys need) are dropped first and rebuilt after the load: one sorted build per index instead of
millions of random inserts into each. Every user shares one bcrypt
hash, computed once at the configured cost. Rows already there (seed, bench fixtures) are kept.

The mix, as a database of a service with a million users looks before the purge job catches up:
half the token rows are access-token records (a fifth of them client_credentials tokens without a
user), three tenths refresh tokens (a third rotated, some revoked), a fifth authorization codes
(most used), issued over the last 30 days; sessions are ACTIVE, EXPIRED and REVOKED in a 3:5:2 mix.

Take the bench lock when running it alone against authy2_bench (`flock /tmp/bench.lock ...`);
bench/scale.py holds it for its whole run. Prints one JSON line with the rows and seconds per step.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import zip_longest
from pathlib import Path

import bcrypt
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.prepare import BCRYPT_COST, DATABASE_URL  # noqa: E402

TOKEN_TABLES = ("access_tokens", "refresh_tokens", "authorization_codes")
# Tables whose indexes are dropped for the load and rebuilt after; users keeps its primary key, which
# other tables' foreign keys need.
REBUILT = {"access_tokens": "pu", "refresh_tokens": "pu", "authorization_codes": "pu", "sessions": "pu", "users": "u"}
SCOPE = "openid profile email offline_access"


def uuid_of(prefix: str, number: str) -> str:
    """SQL for the uuid text of row `number` of a kind: the same expression wherever a row is named."""
    return f"md5('{prefix}' || ({number}))::uuid::text"


def hex64(prefix: str, number: str) -> str:
    """SQL for a 64-hex-digit value (a stored SHA-256), unique per row."""
    return f"encode(sha256(convert_to('{prefix}' || ({number}), 'UTF8')), 'hex')"


def statements(users: int, sessions: int, tokens: int, client_ids: list[str]) -> dict[str, str]:
    """One INSERT ... SELECT per table; `g` numbers the rows from 1."""
    access, refresh = tokens // 2, tokens * 3 // 10
    codes = tokens - access - refresh
    clients = "ARRAY[" + ", ".join(f"'{c}'" for c in client_ids) + "]"
    client = f"({clients})[1 + g % {len(client_ids)}]"
    user_of = uuid_of("u", f"1 + g % {users}")
    session_of = uuid_of("s", f"1 + g % {sessions}")
    grant_of = uuid_of("c", f"1 + g % {codes}")
    # Issued over the last 30 days, spread evenly.
    issued = "(now() at time zone 'utc') - make_interval(secs => (g * 7919) % 2592000)"
    password_hash = bcrypt.hashpw(b"Bulk-Load-Password-1", bcrypt.gensalt(BCRYPT_COST)).decode()
    return {
        "users": f"""
            INSERT INTO users (id, email, password_hash, name, given_name, family_name, locale,
                               phone_number_verified, email_verified, is_active, is_admin, subject,
                               created_at, updated_at, last_login_at)
            SELECT {uuid_of('u', 'g')}, 'user' || g || '@bulk.example', '{password_hash}', 'Bulk User ' || g,
                   'Bulk', 'User ' || g, 'en', false, true, g % 500 <> 0, false, md5('sub' || g) || md5('sub2' || g),
                   (now() at time zone 'utc') - make_interval(secs => g * 60), now() at time zone 'utc',
                   (now() at time zone 'utc') - make_interval(secs => (g * 7919) % 2592000)
            FROM generate_series(1::bigint, {users}) AS g""",
        "sessions": f"""
            INSERT INTO sessions (id, user_id, token_hash, kind, status, created_at, last_seen_at, expires_at,
                                  absolute_expires_at, revoked_at, auth_time, amr, ip_address, user_agent)
            SELECT {uuid_of('s', 'g')}, {uuid_of('u', f'1 + g % {users}')}, {hex64('session', 'g')},
                   CASE WHEN g % 4 = 0 THEN 'api' ELSE 'browser' END,
                   CASE WHEN g % 10 < 3 THEN 'ACTIVE' WHEN g % 10 < 8 THEN 'EXPIRED' ELSE 'REVOKED' END,
                   start, start, start + CASE WHEN g % 10 < 3 THEN interval '8 hours' ELSE interval '15 minutes' END,
                   start + interval '8 hours', CASE WHEN g % 10 >= 8 THEN start + interval '5 minutes' END,
                   start, '["pwd"]', '10.' || (g % 250) || '.' || (g % 199) || '.1', 'Mozilla/5.0 (bulk)'
            FROM (SELECT g, CASE WHEN g % 10 < 3 THEN now() at time zone 'utc'
                                 ELSE (now() at time zone 'utc') - make_interval(secs => (g * 7919) % 2592000) END
                            AS start
                  FROM generate_series(1::bigint, {sessions}) AS g) AS numbered""",
        "access_tokens": f"""
            INSERT INTO access_tokens (id, jti, oauth_client_id, user_id, session_id, grant_id, scope,
                                       issued_at, expires_at, revoked_at)
            SELECT {uuid_of('a', 'g')}, md5('jti' || g), {client},
                   CASE WHEN g % 5 <> 0 THEN {user_of} END, CASE WHEN g % 5 <> 0 THEN {session_of} END,
                   CASE WHEN g % 5 <> 0 THEN {grant_of} END, CASE WHEN g % 5 <> 0 THEN '{SCOPE}' ELSE '' END,
                   issued, issued + interval '1 hour', CASE WHEN g % 50 = 0 THEN issued + interval '10 minutes' END
            FROM (SELECT g, {issued} AS issued FROM generate_series(1::bigint, {access}) AS g) AS numbered""",
        "refresh_tokens": f"""
            INSERT INTO refresh_tokens (id, token_hash, oauth_client_id, user_id, session_id, grant_id, scope,
                                        issued_at, expires_at, revoked_at, rotated_at, auth_time, amr)
            SELECT {uuid_of('r', 'g')}, {hex64('refresh', 'g')}, {client}, {user_of}, {session_of}, {grant_of},
                   '{SCOPE}', issued, issued + interval '30 days',
                   CASE WHEN g % 20 = 0 THEN issued + interval '1 day' END,
                   CASE WHEN g % 3 = 0 THEN issued + interval '1 hour' END, issued, '["pwd"]'
            FROM (SELECT g, {issued} AS issued FROM generate_series(1::bigint, {refresh}) AS g) AS numbered""",
        "authorization_codes": f"""
            INSERT INTO authorization_codes (id, code_hash, oauth_client_id, user_id, session_id, redirect_uri,
                                             scope, nonce, code_challenge, code_challenge_method, auth_time,
                                             created_at, expires_at, used_at, amr)
            SELECT {uuid_of('c', 'g')}, {hex64('code', 'g')}, {client}, {user_of}, {session_of},
                   'http://localhost:3000/callback', '{SCOPE}', md5('nonce' || g),
                   rtrim(encode(sha256(convert_to('v' || g, 'UTF8')), 'base64'), '='), 'S256', issued,
                   issued, issued + interval '60 seconds', CASE WHEN g % 10 <> 0 THEN issued + interval '2 seconds' END,
                   '["pwd"]'
            FROM (SELECT g, {issued} AS issued FROM generate_series(1::bigint, {codes}) AS g) AS numbered""",
    }


def drop_indexes(conn) -> list[str]:
    """Drop the REBUILT tables' indexes and unique (and primary-key) constraints; returns the SQL that
    rebuilds them."""
    per_table = []
    for table, kinds in REBUILT.items():
        rebuild: list[str] = []
        per_table.append(rebuild)
        constraints = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = ANY(%s)", (table, list(kinds))).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)", (table, table)).fetchall()
        for name, definition in constraints:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            rebuild.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for name, definition in indexes:
            conn.execute(f'DROP INDEX "{name}"')
            rebuild.append(definition)
    # Round-robin over the tables, so builds running side by side mostly lock different tables.
    return [sql for round_ in zip_longest(*per_table) for sql in round_ if sql]


def run_timed(database_url: str, sql: str, settings: tuple[str, ...] = ()) -> float:
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        for setting in ("SET synchronous_commit = off", *settings):
            conn.execute(setting)
        conn.execute(sql)
    return time.perf_counter() - started


def load(database_url: str, users: int, sessions: int, tokens: int, parallel: int = 2) -> dict:
    """Fill the tables; returns rows and seconds per step."""
    started = time.perf_counter()
    report: dict = {"users": users, "sessions": sessions, "token_rows": tokens, "seconds": {}}
    with psycopg.connect(database_url, autocommit=True) as conn:
        client_ids = [row[0] for row in conn.execute("SELECT id FROM oauth_clients ORDER BY id")]
        if not client_ids:
            raise SystemExit("no oauth_clients in the database: prepare it first (bench/run.py or flask seed)")
        with conn.transaction():
            rebuild = drop_indexes(conn)
    inserts = statements(users, sessions, tokens, client_ids)
    no_triggers = ("SET session_replication_role = replica",)
    with ThreadPoolExecutor(parallel) as pool:
        timings = dict(zip(inserts, pool.map(lambda sql: run_timed(database_url, sql, no_triggers),
                                             inserts.values())))
    report["seconds"].update({f"insert {table}": round(seconds, 1) for table, seconds in timings.items()})
    index_started = time.perf_counter()
    build = ("SET maintenance_work_mem = '512MB'", "SET max_parallel_maintenance_workers = 0")
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda sql: run_timed(database_url, sql, build), rebuild))
    report["seconds"]["rebuild indexes"] = round(time.perf_counter() - index_started, 1)
    analyze_started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda table: run_timed(database_url, f"VACUUM (ANALYZE) {table}"),
                      ("users", "sessions", *TOKEN_TABLES)))
    report["seconds"]["vacuum analyze"] = round(time.perf_counter() - analyze_started, 1)
    report["seconds"]["total"] = round(time.perf_counter() - started, 1)
    with psycopg.connect(database_url, autocommit=True) as conn:
        report["rows_now"] = {table: conn.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                                                  (table,)).fetchone()[0]
                              for table in ("users", "sessions", *TOKEN_TABLES)}
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--tokens", type=int, default=10_000_000, help="token rows: access, refresh and codes")
    parser.add_argument("--parallel", type=int, default=2, help="PostgreSQL backends loading at once")
    args = parser.parse_args()
    report = load(args.database_url, args.users, args.sessions, args.tokens, args.parallel)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
