"""Server settings measured: `bench/run.py --matrix`.

For each gunicorn setting (worker class, workers, threads, keep-alive, worker recycling), served
directly and behind docs/deploy/nginx.conf, the app's client_credentials and the ceiling run in
interleaved pairs at each --pair-connections count; one table compares them. Every setting starts
from idp/gunicorn_conf.py and overrides only what its row names.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from bench import prepare as preparing
from bench.report import usable_pairs
from bench.scenarios import APP_SCENARIOS, CEILING_SCENARIOS, Context, Load, Outcome, run_scenario
from bench.server import MemorySampler


@dataclass(frozen=True)
class Setting:
    label: str
    worker_class: str = "gthread"
    workers: int = 2
    threads: int | None = 4
    keepalive: int | None = None  # None: the config's (5 s)
    max_requests: int | None = 0  # 0: no recycling, so the rows compare the server alone

    def overrides(self, args: argparse.Namespace, behind_nginx: bool) -> argparse.Namespace:
        return argparse.Namespace(**{**vars(args), "worker_class": self.worker_class, "workers": self.workers,
                                     "threads": self.threads if self.worker_class == "gthread" else None,
                                     "keep_alive": self.keepalive, "max_requests": self.max_requests,
                                     "bare_gunicorn": False, "behind_nginx": behind_nginx})


SETTINGS = [
    Setting("sync -w2", worker_class="sync", threads=None),
    Setting("gthread -w2 --threads 1", threads=1),
    Setting("gthread -w2 --threads 2", threads=2),
    Setting("gthread -w2 --threads 4", threads=4),
    Setting("gthread -w3 --threads 4", workers=3),
    Setting("gthread -w4 --threads 4", workers=4),
    Setting("gthread -w2 --threads 4 keep-alive off", keepalive=0),
    Setting("gthread -w2 --threads 4 max_requests 1000 (recycling)", max_requests=1000),
]


@dataclass
class Row:
    setting: Setting
    behind_nginx: bool
    pairs: dict[int, list[tuple[Outcome, Outcome]]]
    peak_rss_mib: float
    error: str = ""

    def usable(self, connections: int) -> list[tuple[Outcome, Outcome]]:
        return usable_pairs(self.pairs.get(connections, []), "client_credentials", connections)

    def figures(self, connections: int) -> dict:
        usable = self.usable(connections)
        if not usable:
            return {}
        return {"ceiling": median([c.rate for c, _ in usable]), "app": median([a.rate for _, a in usable]),
                "ratio": median([a.rate / c.rate for c, a in usable]),
                "app_p99_ms": median([a.result.p99 or 0.0 for _, a in usable]),
                "app_cpu_ms": median([a.cpu.total_ms for _, a in usable if a.cpu] or [0.0]),
                "errors": sum(a.error_count + c.error_count for c, a in usable)}


def measure_setting(setting: Setting, behind_nginx: bool, prepared, state_dir: Path, args) -> Row:
    from bench import run

    options = setting.overrides(args, behind_nginx)
    name = "".join(ch if ch.isalnum() else "-" for ch in setting.label) + ("-nginx" if behind_nginx else "")
    app = run.serve("wsgi:app", prepared.env, state_dir, options, f"matrix-app-{name}")
    client_credentials = next(s for s in APP_SCENARIOS if s.name == "client_credentials")
    pairs: dict[int, list] = {}
    with app:
        app.start("/api/health")
        sampler = MemorySampler(app.gunicorn)
        sampler.start()
        app_ctx = Context(app.url, prepared.env, state_dir, server_pids=app.pids, worker_pids=app.worker_pids,
                          database=preparing.DATABASE)
        env = run.ceiling_env(prepared.env, run.sample_client_credentials(app_ctx))
        ceiling = run.serve("bench.ceiling_app:app", env, state_dir, options, f"matrix-ceiling-{name}")
        with ceiling:
            ceiling.start("/hello")
            ceiling_ctx = Context(ceiling.url, env, state_dir, server_pids=ceiling.pids,
                                  worker_pids=ceiling.worker_pids, database=preparing.DATABASE)
            for number in range(args.pairs):
                for connections in run.pair_connections(args):
                    load = Load(seconds=args.pair_seconds, warmup=1 if number == 0 else 0, connections=connections)
                    pairs.setdefault(connections, []).append(
                        (run_scenario(CEILING_SCENARIOS[0], ceiling_ctx, load),
                         run_scenario(client_credentials, app_ctx, load)))
        sampler.stop()
    return Row(setting, behind_nginx, pairs, sampler.peak_rss_kib / 1024)


def table(rows: list[Row], connection_counts: list[int]) -> list[str]:
    head = f"{'setting':<54}{'front':<7}"
    for c in connection_counts:
        head += f"{f'ceil c{c}':>10}{f'cc c{c}':>9}{'ratio':>7}{'p99ms':>7}{'cpu':>6}"
    lines = [head + f"{'RSS MiB':>9}"]
    for row in rows:
        line = f"{row.setting.label:<54}{'nginx' if row.behind_nginx else 'direct':<7}"
        if row.error:
            lines.append(line + f"failed: {row.error}")
            continue
        for c in connection_counts:
            f = row.figures(c)
            line += (f"{f['ceiling']:>10.0f}{f['app']:>9.0f}{f['ratio']:>7.0%}{f['app_p99_ms']:>7.1f}"
                     f"{f['app_cpu_ms']:>6.2f}" if f else f"{'-':>39}")
        lines.append(line + f"{row.peak_rss_mib:>9.0f}")
    return lines


def main(args: argparse.Namespace) -> int:
    from bench import run

    started = time.monotonic()
    state_dir, keep = run.state_directory(args, "authy2-matrix-")
    settings = [s for s in SETTINGS if not args.only or any(part in s.label for part in args.only)]
    fronts = [False, True] if not args.matrix_front else [args.matrix_front == "nginx"]
    rows: list[Row] = []
    try:
        prepared = run.stores(state_dir, args)
        loadavg = [run._loadavg()]
        for behind_nginx in fronts:
            for setting in settings:
                print(f"  {setting.label} {'behind nginx' if behind_nginx else 'direct'} ...", file=sys.stderr,
                      flush=True)
                try:
                    rows.append(measure_setting(setting, behind_nginx, prepared, state_dir, args))
                except RuntimeError as exc:
                    rows.append(Row(setting, behind_nginx, {}, 0.0, error=str(exc).splitlines()[0][:100]))
        loadavg.append(run._loadavg())
    except RuntimeError as exc:
        print(f"matrix stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        if not keep:
            shutil.rmtree(state_dir, ignore_errors=True)
    counts = run.pair_connections(args)
    print(f"\nServer settings on this machine: client_credentials (cc) and the ceiling, medians of {args.pairs} "
          f"interleaved {args.pair_seconds}s pairs per connection count (load average {' -> '.join(loadavg)}).\n"
          "Each row is idp/gunicorn_conf.py with what it names overridden (max_requests 0 unless it says "
          "recycling); 'cpu' is the app's CPU ms per request (gunicorn, plus nginx when in front);\n"
          "RSS is the app's gunicorn master + workers at their peak.\n")
    for line in table(rows, counts):
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"loadavg": loadavg, "pair_seconds": args.pair_seconds, "pairs": args.pairs,
                                         "rows": [{"setting": r.setting.label, "behind_nginx": r.behind_nginx,
                                                   "error": r.error, "peak_rss_mib": round(r.peak_rss_mib, 1),
                                                   **{f"c{c}": r.figures(c) for c in counts}} for r in rows]},
                                        indent=2) + "\n")
        print(f"figures written to {args.json}")
    print(f"\ntotal matrix time {time.monotonic() - started:.0f}s")
    return 0
