"""Make the bench's world: a fresh PostgreSQL database and Redis db, the schema, demo data, keys."""
from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.server import ROOT, environment

# BENCH_DATABASE / BENCH_REDIS_DB: another database and Redis db, so that two profiling runs
# (bench/hotspots.py) can prepare side by side without dropping each other's stores.
DATABASE = os.environ.get("BENCH_DATABASE", "authy2_bench")
DATABASE_URL = f"postgresql://postgres@127.0.0.1:5432/{DATABASE}"
REDIS_DB = os.environ.get("BENCH_REDIS_DB", "15")
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
ISSUER = "https://idp.bench.localhost"
BCRYPT_COST = 12
FLASK = ROOT / ".venv" / "bin" / "flask"
PYTHON = ROOT / ".venv" / "bin" / "python"


@dataclass
class Preparation:
    """What preparing produced: the app's environment and notes for the report."""

    env: dict
    notes: list[str] = field(default_factory=list)
    fixtures: dict = field(default_factory=dict)


def app_environment(state_dir: Path, profile: str) -> dict:
    """The production-like settings every app process of the bench runs with."""
    return environment({
        "FLASK_APP": "wsgi",
        "FLASK_ENV": profile,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "ISSUER": ISSUER,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "RATELIMIT_ENABLED": "false",
        "BCRYPT_LOG_ROUNDS": str(BCRYPT_COST),
        "KEYS_DIR": str(state_dir / "keys"),
        "MAIL_OUTBOX_DIR": str(state_dir / "outbox"),
        "LOG_LEVEL": "WARNING",
        "BENCH_LUA_DIR": str(ROOT / "bench" / "lua"),
    })


def reset_stores() -> None:
    """Drop and recreate the bench database; empty the bench Redis db."""
    for sql in (f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", f"CREATE DATABASE {DATABASE}"):
        run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c", sql, "postgres"], {})
    run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "-n", REDIS_DB, "flushdb"], {})


def prepare(state_dir: Path, profile: str = "production") -> Preparation:
    """Reset the stores, build the schema, seed, ensure keys, and create the bench fixtures."""
    (state_dir / "keys").mkdir(parents=True, exist_ok=True)
    env = app_environment(state_dir, profile)
    prepared = Preparation(env=env)
    keys = run([str(FLASK), "keys", "ensure"], env, check=False)
    if keys.returncode != 0:
        prepared.notes.append(f"`flask keys ensure` failed ({last_line(keys)}): keys made by KeyStore.ensure()")
        run([str(PYTHON), "-m", "bench.signing_keys"], env)
    prepared.notes += build_schema(env)
    run([str(FLASK), "seed"], env)
    fixtures = run([str(PYTHON), "-m", "bench.fixtures"], env)
    prepared.fixtures = json.loads(fixtures.stdout.strip().splitlines()[-1])
    return prepared


def build_schema(env: dict) -> list[str]:
    """`flask db upgrade` when migrations exist and match the models; else create_all from the models.

    Returns notes for the report. `flask db check` tells whether the migrations cover the models.
    """
    reset_stores()
    if not any((ROOT / "migrations" / "versions").glob("*.py")):
        run([str(PYTHON), "-m", "bench.schema"], env)
        return ["no migrations yet: schema made with create_all"]
    upgrade = run([str(FLASK), "db", "upgrade"], env, check=False)
    check = run([str(FLASK), "db", "check"], env, check=False) if upgrade.returncode == 0 else upgrade
    if check.returncode == 0:
        return ["schema made by `flask db upgrade`"]
    reset_stores()
    run([str(PYTHON), "-m", "bench.schema"], env)
    reason = last_line(check).split("[", 1)[0].removeprefix("ERROR [flask_migrate] ").strip()
    return [f"migrations do not match the models yet (`flask db check`: {reason[:80]}): schema made with create_all"]


def run(command: list[str], env: dict, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=ROOT, env=env or None, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"{' '.join(command[:3])} failed with {done.returncode}: {last_line(done)}")
    return done


def last_line(done: subprocess.CompletedProcess) -> str:
    lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"
