"""Flat cost in data (`make bench-scale`): every rate at 10^3 rows against the same rate at 10^6.

    .venv/bin/python bench/scale.py                      # takes the bench lock itself
    .venv/bin/python bench/scale.py --run-args "--seconds 4 --pairs 1"

1. `bench/run.py --json small.json` on a freshly prepared database: seed data plus the rows the run
   itself writes, about 10^3 (its state directory keeps the keys and secrets);
2. `bench/bulk_load.py`: 10^6 users, 10^6 sessions, 10^7 token rows, then VACUUM ANALYZE;
3. `bench/run.py --skip-prepare --json big.json` on that database, same keys and secrets;
4. `bench/explain.py`: EXPLAIN of each hot statement against the filled database (uses an index?).

Then one line per scenario: its rate at 10^3 and at 10^6, the ratio and PASS/FAIL against the target
(>= 90%). Beside it, two readings a loaded host disturbs less: the ratio of the scenario's share of
the ceiling measured in the same run (the ceiling touches no database, so it tracks the host's
speed), and the ratio by CPU cost per request (app + PostgreSQL). Only one benchmark may run on
the machine at a time: this script holds /tmp/bench.lock (flock) from start to end, so the run.py
calls inside it run under the lock.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.prepare import DATABASE_URL, PYTHON  # noqa: E402
from bench.server import ROOT  # noqa: E402

LOCK = Path("/tmp/bench.lock")
TARGET = 0.90
DEFAULT_RUN_ARGS = "--pairs 0"


def hold_bench_lock():
    """Block until no other benchmark runs, then keep the lock until this process exits."""
    handle = LOCK.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for {LOCK} (another benchmark is running) ...", file=sys.stderr, flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def step(title: str, command: list[str], makes: Path | None = None) -> float:
    """Run one step in the foreground (its output goes straight through); returns its seconds."""
    print(f"\n== {title}: {shlex.join(command)}", flush=True)
    if makes is not None:
        makes.unlink(missing_ok=True)
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT)
    if done.returncode != 0 or (makes is not None and not makes.exists()):
        raise SystemExit(f"bench-scale stopped: {title} failed (exit {done.returncode})")
    return time.monotonic() - started


def scenario_rates(path: Path) -> tuple[dict, dict]:
    """{(name, connections): scenario} and {connections: ceiling} from a run.py --json file."""
    figures = json.loads(path.read_text())
    scenarios = {(s["name"], s["connections"]): s for s in figures["scenarios"]
                 if not s["unavailable"] and s["rate"]}
    ceilings = {c["connections"]: c for c in figures["ceilings"] if not c["unavailable"] and c["rate"]}
    return scenarios, ceilings


def cpu_ms(scenario: dict) -> float | None:
    app, db = scenario.get("cpu_app_ms"), scenario.get("cpu_db_ms")
    return None if app is None or db is None or app + db <= 0 else app + db


def comparison_lines(small: Path, big: Path) -> tuple[list[str], bool]:
    """One line per scenario measured in both runs; True when every rate held >= TARGET."""
    small_rates, small_ceilings = scenario_rates(small)
    big_rates, big_ceilings = scenario_rates(big)
    lines = [f"{'scenario':<34}{'10^3':>10}{'10^6':>10}{'ratio':>8}  verdict  "
             f"{'share of ceiling':>17}{'by CPU':>8}"]
    passed = True
    for key in [k for k in small_rates if k in big_rates]:
        name, connections = key
        before, after = small_rates[key], big_rates[key]
        ratio = after["rate"] / before["rate"]
        verdict = "PASS" if ratio >= TARGET else "FAIL"
        passed &= ratio >= TARGET
        share = "-"
        if connections in small_ceilings and connections in big_ceilings:
            share_ratio = (after["rate"] / big_ceilings[connections]["rate"]) / (
                before["rate"] / small_ceilings[connections]["rate"])
            share = f"{share_ratio:.1%}"
        by_cpu = "-"
        if cpu_ms(before) and cpu_ms(after):
            by_cpu = f"{cpu_ms(before) / cpu_ms(after):.1%}"
        unit = before.get("unit", "req/s")
        lines.append(f"{name + f' -c{connections}':<34}{before['rate']:>10.1f}{after['rate']:>10.1f}{ratio:>8.1%}  "
                     f"{verdict:<7}  {share:>17}{by_cpu:>8}  {unit}")
    for key in [k for k in small_rates if k not in big_rates]:
        lines.append(f"{key[0] + f' -c{key[1]}':<34}  unavailable at 10^6: FAIL")
        passed = False
    return lines, passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=Path("/tmp/authy2-bench-scale"),
                        help="run.py's state directory (keys, secrets, logs) and the JSON figures")
    parser.add_argument("--run-args", default=DEFAULT_RUN_ARGS,
                        help=f"extra arguments for both run.py calls (default {DEFAULT_RUN_ARGS!r})")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--tokens", type=int, default=10_000_000)
    args = parser.parse_args()
    lock = hold_bench_lock()
    started = time.monotonic()
    state = args.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    small, big = state / "small.json", state / "big.json"
    run = [str(PYTHON), "bench/run.py", "--state-dir", str(state), *shlex.split(args.run_args)]
    seconds = {"run at 10^3": step("rates at ~10^3 rows", [*run, "--json", str(small)], small)}
    seconds["bulk load"] = step("bulk load", [str(PYTHON), "bench/bulk_load.py", "--database-url", DATABASE_URL,
                                              "--users", str(args.users), "--sessions", str(args.sessions),
                                              "--tokens", str(args.tokens)])
    seconds["run at 10^6"] = step("rates at 10^6 rows", [*run, "--skip-prepare", "--json", str(big)], big)
    explained = subprocess.run([str(PYTHON), "bench/explain.py", "--state-dir", str(state)], cwd=ROOT)
    lines, passed = comparison_lines(small, big)
    print(f"\nFlat cost in data: {args.users:,} users, {args.sessions:,} sessions, {args.tokens:,} token rows "
          f"against ~10^3 rows; target: every rate >= {TARGET:.0%} of its rate at 10^3")
    print("\n".join(lines))
    print("share of ceiling: the scenario's rate / the ceiling's in the same run, at 10^6 over at 10^3 "
          "(host drift cancels); by CPU: CPU ms per request at 10^3 / at 10^6")
    print(f"\nrates held: {'PASS' if passed else 'FAIL'}; EXPLAIN uses an index: "
          f"{'PASS' if explained.returncode == 0 else 'FAIL'}")
    print("steps: " + ", ".join(f"{name} {value:.0f}s" for name, value in seconds.items())
          + f"; total {time.monotonic() - started:.0f}s; figures in {small} and {big}")
    lock.close()
    return 0 if passed and explained.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
