"""The Authy2 load benchmark: `make bench` or `.venv/bin/python bench/run.py`.

Prepares PostgreSQL (authy2_bench) and Redis (db 15) on loopback, serves the app and a minimal
ceiling app under gunicorn, drives each scenario with wrk, and prints rates, latencies, ratios to
the ceilings, memory and SQL statement counts. Measures; never asserts on time.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import prepare as preparing  # noqa: E402
from bench import report  # noqa: E402
from bench.bcrypt_rate import BcryptRate, measure_bcrypt_rate  # noqa: E402
from bench.probe import CLIENT_ID, CLIENT_SECRET, Unavailable, client_credentials_token, jose_parts  # noqa: E402
from bench.scenarios import (APP_SCENARIOS, CEILING_SCENARIOS, HELLO, Context, Load, Outcome, Scenario,  # noqa: E402
                             run_scenario)
from bench.server import ROOT, GunicornServer, MemorySampler, NginxFront, Stack, free_port  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="measured seconds per scenario (single pass)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up seconds before each scenario")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections")
    parser.add_argument("--pair-connections", default="4,16",
                        help="comma-separated wrk connection counts client_credentials is paired at")
    server = parser.add_argument_group("server (default: idp/gunicorn_conf.py with -w 2 on a loopback port)")
    server.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    server.add_argument("--worker-class", choices=("sync", "gthread"), help="override the config's worker class")
    server.add_argument("--threads", type=int, help="override the config's threads per gthread worker")
    server.add_argument("--keep-alive", type=int, help="override the config's keep-alive seconds (0: off)")
    server.add_argument("--max-requests", type=int, help="override the config's worker recycling, jitter a tenth of it (0: never)")
    server.add_argument("--bare-gunicorn", action="store_true",
                        help="plain gunicorn defaults instead of idp/gunicorn_conf.py")
    server.add_argument("--behind-nginx", action="store_true",
                        help="put docs/deploy/nginx.conf (plain HTTP, loopback) in front of both servers")
    parser.add_argument("--profile", default="production", choices=("production", "development"))
    parser.add_argument("--only", action="append", help="run only scenarios whose name contains this")
    parser.add_argument("--keep", action="store_true", help="keep the state directory (logs, keys)")
    parser.add_argument("--pairs", type=int, default=3,
                        help="rounds of interleaved reference / app runs for the paired ratios (0: none)")
    parser.add_argument("--pair-seconds", type=int, default=3, help="measured seconds of each paired run")
    parser.add_argument("--matrix", action="store_true",
                        help="measure client_credentials and the ceiling under each server setting "
                             "(bench/server_matrix.py) instead of the scenarios; --only then picks settings")
    parser.add_argument("--matrix-front", choices=("direct", "nginx"),
                        help="with --matrix: only directly or only behind nginx (default: both)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write every figure, ratio and target verdict to PATH as JSON")
    parser.add_argument("--skip-prepare", action="store_true",
                        help="reuse the authy2_bench database and Redis db 15 as they are (no drop, no seed)")
    parser.add_argument("--state-dir", type=Path, metavar="PATH",
                        help="keep keys, secrets and logs in PATH (created if missing, never removed) so a later "
                             "--skip-prepare run signs with the same keys")
    return parser.parse_args()


def serve(app_spec: str, env: dict, state_dir: Path, args: argparse.Namespace, name: str) -> Stack:
    gunicorn = GunicornServer(app_spec, free_port(), env, state_dir / f"{name}.log", workers=args.workers,
                              worker_class=args.worker_class, threads=args.threads, keepalive=args.keep_alive,
                              max_requests=args.max_requests, production_config=not args.bare_gunicorn)
    front = NginxFront(gunicorn.port, state_dir / f"{name}-nginx") if args.behind_nginx else None
    return Stack(gunicorn, front)


@dataclass
class Measurements:
    """Everything one run measured, for the report."""

    outcomes: list[Outcome]
    ceilings: list[Outcome]
    bcrypt: BcryptRate | None
    sampler: MemorySampler
    sample_token: str | None
    pairs: list[tuple[Outcome, Outcome]] = field(default_factory=list)
    sql: dict | str = ""
    loadavg: list[str] = field(default_factory=list)
    server: str = ""


def selected(args) -> list:
    return [s for s in APP_SCENARIOS if not args.only or any(part in s.name for part in args.only)]


def measure(prepared: preparing.Preparation, state_dir: Path, args, load: Load) -> Measurements:
    """The references, then every app scenario, then the interleaved pairs; the app's memory
    sampled throughout.

    Each single-pass rate is compared with a figure measured just before it (the references right
    before the scenarios, raw bcrypt right before login); the judged ratios are the medians of the
    pairs, which a machine whose speed drifts during the run skews far less.
    """
    loadavg = [_loadavg()]
    app = serve("wsgi:app", prepared.env, state_dir, args, "app")
    with app:
        app.start("/api/health")
        sampler = MemorySampler(app.gunicorn)
        sampler.start()
        ctx = Context(app.url, prepared.env, state_dir, server_pids=app.pids, worker_pids=app.worker_pids,
                      database=preparing.DATABASE,
                      cookie=prepared.fixtures["cookie"])
        clear_refresh_pool(ctx)
        sample_token = sample_client_credentials(ctx)
        env = ceiling_env(prepared.env, sample_token)
        reference = serve("bench.ceiling_app:app", env, state_dir, args, "ceiling")
        with reference:
            reference.start("/hello")
            reference_ctx = Context(reference.url, env, state_dir, server_pids=reference.pids,
                                    worker_pids=reference.worker_pids,
                                    database=preparing.DATABASE)
            ceilings = run_references(reference_ctx, load)
            outcomes, bcrypt = run_app_scenarios(ctx, args, load)
            available = {o.name for o in outcomes if not o.unavailable}
            pairs = run_pairs(ctx, reference_ctx, args, pairings(args, available)) if args.pairs else []
        sampler.stop()
        server = app.describe()
    loadavg.append(_loadavg())
    return Measurements(outcomes, ceilings, bcrypt, sampler, sample_token, pairs=pairs, loadavg=loadavg,
                        server=server)


@dataclass(frozen=True)
class Pairing:
    """An app scenario and the reference run right before it, at one connection count."""

    app: Scenario
    reference: Scenario
    connections: int


def pair_connections(args) -> list[int]:
    try:
        return [int(part) for part in args.pair_connections.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"--pair-connections: whole numbers separated by commas, got {args.pair_connections!r}")


def pairings(args, available: set[str]) -> list[Pairing]:
    """What each round pairs: client_credentials with the ceiling at every --pair-connections count,
    the code flow and refresh with the ceiling, discovery and JWKS (plain and 304) with hello-world."""
    ceiling = CEILING_SCENARIOS[0]
    by_name = {s.name: s for s in APP_SCENARIOS if s.name in available}
    wanted = [("client_credentials", ceiling, c) for c in pair_connections(args)]
    wanted += [(name, ceiling, args.connections) for name in ("code flow (authorize+token)", "refresh_token")]
    wanted += [(name, HELLO, args.connections) for name in ("discovery", "jwks", "discovery 304", "jwks 304")]
    return [Pairing(by_name[name], reference, c) for name, reference, c in wanted if name in by_name]


def run_pairs(app_ctx: Context, reference_ctx: Context, args, plan: list[Pairing]) -> list[tuple[Outcome, Outcome]]:
    """Each pairing's reference and app scenario back to back, `--pairs` rounds: both servers stay
    up and each app run follows its reference run, so a machine whose speed drifts during the run
    (a shared host) moves both sides of each pair alike. Only the first round warms up."""
    pairs = []
    for number in range(args.pairs):
        for pairing in plan:
            load = Load(seconds=args.pair_seconds, warmup=1 if number == 0 else 0, connections=pairing.connections)
            _say(f"pair {number + 1}/{args.pairs} at -c{pairing.connections}: {pairing.reference.name}, "
                 f"then {pairing.app.name}")
            pairs.append((run_scenario(pairing.reference, reference_ctx, load),
                          run_scenario(pairing.app, app_ctx, load)))
    return pairs


def run_references(ctx: Context, load: Load) -> list[Outcome]:
    """Both ceiling variants and the hello-world endpoint, on one gunicorn set up like the app's."""
    outcomes = []
    for scenario in [*CEILING_SCENARIOS, HELLO]:
        _say(scenario.name)
        outcomes.append(run_scenario(scenario, ctx, load))
    return outcomes


def run_app_scenarios(ctx: Context, args, load: Load) -> tuple[list[Outcome], BcryptRate | None]:
    """The selected app scenarios in order; raw bcrypt is measured right before the login."""
    outcomes, bcrypt = [], None
    for scenario in selected(args):
        if scenario.name == "password login":
            _say("raw bcrypt")
            bcrypt = measure_bcrypt_rate(preparing.BCRYPT_COST)
        _say(scenario.name)
        outcomes.append(run_scenario(scenario, ctx, load))
    return outcomes, bcrypt


def sample_client_credentials(ctx: Context) -> str | None:
    """A real access token whose header and claims the ceiling copies; None if the grant fails."""
    try:
        return client_credentials_token(ctx.base_url)
    except (Unavailable, OSError):
        return None


def ceiling_env(app_env: dict, sample_token: str | None) -> dict:
    env = {**app_env, "BENCH_CLIENT_ID": CLIENT_ID, "BENCH_CLIENT_SECRET": CLIENT_SECRET}
    if sample_token:
        header, claims = jose_parts(sample_token)
        env.update(BENCH_JOSE_HEADER=json.dumps(header), BENCH_CLAIMS=json.dumps(claims))
    return env


def clear_refresh_pool(ctx: Context) -> None:
    """Forget refresh tokens a previous run in the same state directory harvested (maybe spent)."""
    shutil.rmtree(ctx.pool_dir, ignore_errors=True)
    ctx.pool_file.unlink(missing_ok=True)


def describe_run(args, load: Load, prepared: preparing.Preparation, measured: Measurements) -> dict:
    """How the run was made, for the JSON file."""
    return {"cpus": os.cpu_count(), "loadavg": measured.loadavg, "server": measured.server,
            "behind_nginx": args.behind_nginx, "profile": args.profile, "seconds": load.seconds, "warmup": load.warmup,
            "connections": load.connections, "pair_connections": pair_connections(args), "pairs": args.pairs, "pair_seconds": args.pair_seconds,
            "skip_prepare": args.skip_prepare, "bcrypt_cost": preparing.BCRYPT_COST, "notes": prepared.notes,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _say(name: str) -> None:
    print(f"  running {name} ...", file=sys.stderr, flush=True)


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ", 1)[0]
    except OSError:
        return "?"


def count_sql(env: dict) -> dict | str:
    done = subprocess.run([str(preparing.PYTHON), "-m", "bench.sql_count"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
        return lines[-1] if lines else f"exit {done.returncode}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_wrk() -> bool:
    """wrk is a Debian package; install it when missing and we may (root)."""
    if shutil.which("wrk"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk (apt-get install -y wrk) ...", file=sys.stderr, flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
    return shutil.which("wrk") is not None


def main() -> int:
    args = parse_args()
    if args.matrix:
        from bench import server_matrix

        return server_matrix.main(args)
    if not ensure_wrk():
        print("wrk is not installed and could not be installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    started = time.monotonic()
    load = Load(seconds=args.seconds, warmup=args.warmup, connections=args.connections)
    state_dir, keep = state_directory(args, "authy2-bench-")
    try:
        prepared = stores(state_dir, args)
        measured = measure(prepared, state_dir, args, load)
        print("counting SQL statements ...", file=sys.stderr, flush=True)
        measured.sql = count_sql(prepared.env)
        print_report(args, load, prepared, measured)
        if args.json:
            args.json.write_text(json.dumps(report.as_json(describe_run(args, load, prepared, measured), measured),
                                            indent=2) + "\n")
            print(f"figures written to {args.json}")
        print(f"\ntotal bench time {time.monotonic() - started:.0f}s; state in {state_dir}"
              + ("" if keep else " (removed)"))
    except RuntimeError as exc:
        print(f"bench stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        if not keep:
            shutil.rmtree(state_dir, ignore_errors=True)
    return 0


def state_directory(args, prefix: str) -> tuple[Path, bool]:
    """Where the run keeps keys, secrets and logs, and whether it stays afterwards (--keep or --state-dir)."""
    if args.state_dir:
        args.state_dir.mkdir(parents=True, exist_ok=True)
        return args.state_dir.resolve(), True
    return Path(tempfile.mkdtemp(prefix=prefix)), args.keep


def stores(state_dir: Path, args) -> preparing.Preparation:
    """The bench database and Redis reused as they are (--skip-prepare), or prepared afresh with the
    secrets they were seeded under saved for a later reuse."""
    if args.skip_prepare:
        print("reusing the bench database and Redis as they are (--skip-prepare) ...", file=sys.stderr, flush=True)
        return reuse_stores(state_dir, args.profile)
    print("preparing PostgreSQL, Redis, keys, schema, seed ...", file=sys.stderr, flush=True)
    prepared = preparing.prepare(state_dir, args.profile)
    save_secrets(state_dir, prepared.env)
    return prepared


SECRETS_FILE = "bench-secrets.json"
SECRET_NAMES = ("SECRET_KEY", "ENCRYPTION_KEY")


def save_secrets(state_dir: Path, env: dict) -> None:
    """Keep the app secrets the database was seeded under, for a later --skip-prepare run."""
    path = state_dir / SECRETS_FILE
    path.write_text(json.dumps({name: env[name] for name in SECRET_NAMES}))
    path.chmod(0o600)


def reuse_stores(state_dir: Path, profile: str) -> preparing.Preparation:
    """The app environment over the existing database: the saved secrets and keys when the state
    directory has them, else new ones (`flask keys ensure` makes a key only when none is active);
    one new SSO session for the code flow (the only row written)."""
    (state_dir / "keys").mkdir(parents=True, exist_ok=True)
    env = preparing.app_environment(state_dir, profile)
    prepared = preparing.Preparation(env=env, notes=["--skip-prepare: the database and Redis were reused as they were"])
    saved = state_dir / SECRETS_FILE
    if saved.exists():
        env.update(json.loads(saved.read_text()))
    else:
        save_secrets(state_dir, env)
    exists = preparing.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAq", "-c",
                            f"SELECT 1 FROM pg_database WHERE datname = '{preparing.DATABASE}'", "postgres"], {})
    seeded = exists.stdout.strip() == "1" and preparing.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAq", "-c",
         f"SELECT count(*) FROM oauth_clients WHERE client_id = '{CLIENT_ID}'", preparing.DATABASE],
        {}, check=False).stdout.strip() == "1"
    if not seeded:
        raise RuntimeError(f"--skip-prepare: database {preparing.DATABASE} is missing or not seeded; "
                           "run once without --skip-prepare")
    preparing.run([str(preparing.FLASK), "keys", "ensure"], env)
    fixtures = preparing.run([str(preparing.PYTHON), "-m", "bench.fixtures"], env)
    prepared.fixtures = json.loads(fixtures.stdout.strip().splitlines()[-1])
    return prepared


def print_report(args, load: Load, prepared: preparing.Preparation, measured: Measurements) -> None:
    print()
    print(f"Authy2 bench: {os.cpu_count()} CPUs (load average {' -> '.join(measured.loadavg)}); "
          f"{measured.server}; wrk -t{load.threads} -c{load.connections} -d{load.seconds}s (+{load.warmup}s warm-up); "
          f"FLASK_ENV={args.profile}; PostgreSQL + Redis on 127.0.0.1; bcrypt cost {preparing.BCRYPT_COST}")
    for note in prepared.notes:
        print(f"note: {note}")
    if not measured.sample_token:
        print("note: no client_credentials token to copy: the ceiling signs a default claims shape")
    if measured.bcrypt:
        print(f"raw bcrypt at cost {preparing.BCRYPT_COST}, 2 processes: {measured.bcrypt.per_second:.2f} "
              f"verifications/s, {measured.bcrypt.cpu_ms:.0f} ms CPU each")
    print()
    for line in report.scenario_lines(measured.outcomes, measured.ceilings, measured.bcrypt):
        print(line)
    print(report.LEGEND)
    for line in report.pair_lines(measured.pairs, args.pair_seconds):
        print(line)
    print()
    sampler = measured.sampler
    print(report.memory_line(sampler.peak_rss_kib, sampler.peak_pss_kib, sampler.processes, sampler.peak_rss_by_pid,
                             len(sampler.seen)))
    for line in report.sql_lines(measured.sql):
        print(line)
    for line in report.summary_lines(report.targets(measured)):
        print(line)


if __name__ == "__main__":
    sys.exit(main())
