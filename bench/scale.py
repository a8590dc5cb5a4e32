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
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.prepare import DATABASE_URL, PYTHON  # noqa: E402
from bench.server import ROOT  # noqa: E402

LOCK = Path("/tmp/bench.lock")
TARGET = 0.90
DEFAULT_RUN_ARGS = ""


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


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def figures_of(path: Path) -> dict:
    """{(name, connections): {rate, share, cpu}} from a run.py --json file.

    Interleaved pairs, where the run made them: median rate, median share of the reference measured
    next to it, median CPU ms. Otherwise the single pass: the rate, and its share of the reference
    measured in the same run (hello-world for discovery and JWKS, raw bcrypt for login, the ceiling
    for the rest).
    """
    data = json.loads(path.read_text())
    references: dict = {}
    for reference in data["ceilings"]:  # the plain ceiling comes before the ceiling + INSERT
        if not reference["unavailable"] and reference["rate"]:
            kind = "hello" if reference["name"].startswith("hello") else "ceiling"
            references.setdefault((kind, reference["connections"]), reference["rate"])
    bcrypt_rate = (data.get("bcrypt") or {}).get("per_second")
    grouped: dict = {}
    for pair in data.get("pairs", []):
        if not pair["unavailable"] and pair["rate"] and pair.get("ratio"):
            grouped.setdefault((pair["name"], pair["connections"]), []).append(pair)
    result = {key: {"rate": median([p["rate"] for p in pairs]), "share": median([p["ratio"] for p in pairs]),
                    "cpu": median([c for c in map(cpu_ms, pairs) if c]), "basis": f"median of {len(pairs)} pairs"}
              for key, pairs in grouped.items()}
    for scenario in data["scenarios"]:
        key = (scenario["name"], scenario["connections"])
        if key in result or scenario["unavailable"] or not scenario["rate"]:
            continue
        if scenario["name"] == "password login":
            reference = bcrypt_rate
        elif scenario["name"].startswith(("discovery", "jwks")):
            reference = references.get(("hello", scenario["connections"]))
        else:
            reference = references.get(("ceiling", scenario["connections"]))
        result[key] = {"rate": scenario["rate"], "share": scenario["rate"] / reference if reference else None,
                       "cpu": cpu_ms(scenario), "basis": "single pass"}
    return result


def cpu_ms(scenario: dict) -> float | None:
    app, db = scenario.get("cpu_app_ms"), scenario.get("cpu_db_ms")
    return None if app is None or db is None or app + db <= 0 else app + db


def comparison_lines(small: Path, big: Path) -> tuple[list[str], bool]:
    """One line per scenario measured in both runs; True when every one held >= TARGET.

    Judged on the share of the reference (the scenario's rate over the rate of the ceiling, hello-world
    or raw bcrypt measured beside it, at 10^6 over at 10^3): on this shared host the raw rate of one
    and the same build drifts by more than the 10% being judged between two runs minutes apart, and
    the references, which touch no database, drift with it. The raw rates and their ratio are printed
    beside it.
    """
    before_all, after_all = figures_of(small), figures_of(big)
    lines = [f"{'scenario':<36}{'10^3':>9}{'10^6':>9}{'rate ratio':>11}{'share ratio':>12}  verdict"
             f"{'by CPU':>8}  basis"]
    passed = True
    for key, before in before_all.items():
        label = f"{key[0]} -c{key[1]}"
        after = after_all.get(key)
        if after is None:
            lines.append(f"{label:<36}{before['rate']:>9.1f}{'-':>9}  unavailable at 10^6: FAIL")
            passed = False
            continue
        ratio = after["rate"] / before["rate"]
        share = after["share"] / before["share"] if after["share"] and before["share"] else None
        held = (share if share is not None else ratio) >= TARGET
        passed &= held
        by_cpu = f"{before['cpu'] / after['cpu']:.1%}" if before["cpu"] and after["cpu"] else "-"
        share_text = "-" if share is None else f"{share:.1%}"
        lines.append(f"{label:<36}{before['rate']:>9.1f}{after['rate']:>9.1f}{ratio:>11.1%}{share_text:>12}  "
                     f"{'PASS' if held else 'FAIL':<7}{by_cpu:>8}  {after['basis']}")
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
    print("share ratio (the verdict): the scenario's rate over its reference's (ceiling, hello-world, raw bcrypt)\n"
          "measured beside it, at 10^6 over at 10^3, so the host's drift cancels; by CPU: CPU ms per request\n"
          "at 10^3 over at 10^6")
    print(f"\nrates held: {'PASS' if passed else 'FAIL'}; EXPLAIN uses an index: "
          f"{'PASS' if explained.returncode == 0 else 'FAIL'}")
    print("steps: " + ", ".join(f"{name} {value:.0f}s" for name, value in seconds.items())
          + f"; total {time.monotonic() - started:.0f}s; figures in {small} and {big}")
    lock.close()
    return 0 if passed and explained.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
