"""Print the bench's figures: a table of rates, latencies, ratios to the ceilings, memory, SQL."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from statistics import median

from bench.bcrypt_rate import BcryptRate
from bench.scenarios import Outcome

# The targets on rates, as ratios to the reference each is paired with.
RATE_TARGETS = {"client_credentials": 0.90, "code flow (authorize+token)": 1 / 6, "refresh_token": 1 / 4,
                "discovery": 0.90, "jwks": 0.90}
BCRYPT_TARGET = 0.90
RSS_TARGET_MIB = 300


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}ms"


def _cpu(outcome: Outcome) -> str:
    cpu = outcome.cpu
    return "-" if cpu is None else f"{cpu.app_ms:.2f}+{cpu.db_ms:.2f}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


TOKEN_SCENARIOS = ("client_credentials", "refresh_token")


HELLO_NAME = "hello-world Flask"
HELLO_COMPARED = ("discovery", "jwks", "discovery 304", "jwks 304")
HELLO_TARGET = 0.90


def scenario_lines(outcomes: list[Outcome], ceilings: list[Outcome], bcrypt: BcryptRate | None) -> list[str]:
    """One line per scenario; ratios against the plain ceiling (ceilings[0]), discovery and JWKS
    against the hello-world endpoint, and, for token grants that persist one token row, against the
    ceiling that also INSERTs one (ceilings[1])."""
    ceiling = ceilings[0] if ceilings else None
    persisted = ceilings[1] if len(ceilings) > 1 and not ceilings[1].name == HELLO_NAME else None
    hello = next((o for o in ceilings if o.name == HELLO_NAME), None)
    lines = [f"{'scenario':<30}{'rate':>17}{'p50':>10}{'p99':>10}{'errors':>7}{'CPU ms app+db':>17}  ratio / target"]
    for outcome in ceilings + outcomes:
        if outcome.unavailable:
            lines.append(f"{outcome.name:<30}unavailable: {outcome.unavailable}")
            continue
        result = outcome.result
        line = (f"{outcome.name:<30}{outcome.rate:>9.1f} {outcome.unit:<7}{_ms(result.p50):>10}"
                f"{_ms(result.p99):>10}{outcome.error_count:>7}{_cpu(outcome):>17}  ")
        if outcome in ceilings:
            if outcome is ceiling:
                lines.append(line + "(the ceiling: 100%)")
            elif outcome is hello:
                lines.append(line + "(the reference of discovery and JWKS: 100%)")
            else:
                lines.append(line + _ratios(outcome, ceiling, None))
            continue
        if outcome.name in HELLO_COMPARED:
            lines.append(line + _ratios(outcome, hello, None, "hello-world", HELLO_TARGET))
            continue
        text = _ratios(outcome, ceiling, bcrypt)
        if outcome.name in TOKEN_SCENARIOS and persisted and persisted.rate and not persisted.unavailable:
            text += f"; {outcome.rate / persisted.rate:.1%} of ceiling + INSERT"
        lines.append(line + text)
    return lines


def _ratios(outcome: Outcome, ceiling: Outcome | None, bcrypt: BcryptRate | None, of: str = "ceiling",
            target: float | None = None) -> str:
    notes = []
    if ceiling and ceiling.rate and not ceiling.unavailable:
        ratio = outcome.rate / ceiling.rate
        target = target if target is not None else RATE_TARGETS.get(outcome.name)
        text = f"{ratio:6.1%} of {of}"
        if target is not None:
            text += f" (target >= {target:.0%}: {_verdict(ratio >= target)})"
        if outcome.cpu and ceiling.cpu and outcome.cpu.total_ms:
            text += f", {ceiling.cpu.total_ms / outcome.cpu.total_ms:.1%} by CPU cost"
        notes.append(text)
    if outcome.name == "password login" and bcrypt:
        ratio = outcome.rate / bcrypt.per_second
        text = f"{ratio:6.1%} of raw bcrypt (target >= {BCRYPT_TARGET:.0%}: {_verdict(ratio >= BCRYPT_TARGET)})"
        if outcome.cpu and outcome.cpu.total_ms:
            text += f", {bcrypt.cpu_ms / outcome.cpu.total_ms:.1%} by CPU cost"
        notes.append(text)
    if outcome.result and outcome.result.counters:
        notes.append(" ".join(f"{k}={v}" for k, v in outcome.result.counters.items()))
    return "; ".join(notes)


LEGEND = ("CPU ms app+db: CPU time per request (per flow for the code flow) spent by the gunicorn processes "
          "and by the PostgreSQL backends of the bench database; 'by CPU cost' compares it with the "
          "ceiling's, a ratio that background load on the machine disturbs less than the rate.")


def pair_lines(pairs: list, seconds: int) -> list[str]:
    """Each paired scenario (per connection count) over the reference measured right before it:
    every pair's ratio, the median, and the median app rate paired with the median reference rate."""
    lines = []
    for name, connections in dict.fromkeys((app.name, app.connections) for _, app in pairs):
        usable = usable_pairs(pairs, name, connections)
        if not usable:
            continue
        reference = usable[0][0].name
        ratios = [app.rate / ref.rate for ref, app in usable]
        by_cpu = [ref.cpu.total_ms / app.cpu.total_ms for ref, app in usable if ref.cpu and app.cpu]
        line = (f"{name} / {reference} at -c{connections}, {len(usable)} interleaved {seconds}s pairs: "
                + ", ".join(f"{r:.1%}" for r in ratios) + f"; median {median(ratios):.1%}")
        target = RATE_TARGETS.get(name)
        if target is not None:
            line += f" (target >= {target:.1%}: {_verdict(median(ratios) >= target)})"
        if by_cpu:
            line += f", median {median(by_cpu):.1%} by CPU cost"
        reruns = sum(ref.reruns + app.reruns for ref, app in usable)
        if reruns:
            line += f" ({reruns} run(s) measured again: their connections fell unevenly on the workers)"
        line += (f"; rates: median {median([a.rate for _, a in usable]):.1f} {usable[0][1].unit} beside a median "
                 f"{median([r.rate for r, _ in usable]):.0f} req/s; app p99 median "
                 f"{median([a.result.p99 or 0 for _, a in usable]):.1f} ms")
        lines.append(line)
    return [""] + lines if lines else []


def memory_line(peak_rss_kib: int, peak_pss_kib: int, processes: int, by_pid: dict[int, int], seen: int = 0) -> str:
    """The summed peak and each process's RSS at that moment (master first: it has the lowest pid)."""
    rss_mib = peak_rss_kib / 1024
    each = " + ".join(f"{by_pid[pid] / 1024:.0f}" for pid in sorted(by_pid))
    recycled = f"; {seen - processes} worker(s) recycled (max_requests) during the run" if seen > processes else ""
    return (f"memory under load: peak RSS of gunicorn master + workers ({processes} processes) = "
            f"{rss_mib:.1f} MiB (per process {each} MiB; PSS {peak_pss_kib / 1024:.1f} MiB{recycled}); "
            f"target <= {RSS_TARGET_MIB} MiB: {_verdict(rss_mib <= RSS_TARGET_MIB)}")


def sql_lines(counts: dict | str) -> list[str]:
    if isinstance(counts, str):
        return [f"SQL statements per request: unavailable: {counts}"]
    lines = ["SQL statements per request (steady state, in-process, before_cursor_execute):"]
    for name, result in counts.items():
        status = "" if result["ok"] else f"  (request failed: HTTP {result['status']}, count not meaningful)"
        lines.append(f"  {name:<28}{result['count']:>4}{status}")
    return lines


@dataclass
class Target:
    """One target of the issue: the figure measured, the bound, and whether the figure meets it."""

    name: str
    figure: float | None  # None: not measured in this run (the basis says why)
    bound: float
    unit: str  # "ratio" (at least `bound`) or "MiB" (at most `bound`)
    basis: str

    @property
    def passed(self) -> bool | None:
        if self.figure is None:
            return None
        return self.figure <= self.bound if self.unit == "MiB" else self.figure >= self.bound

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "NOT MEASURED"}[self.passed]


def usable_pairs(pairs: list, name: str, connections: int | None = None) -> list[tuple[Outcome, Outcome]]:
    return [(ref, app) for ref, app in pairs if app.name == name and ref.rate and app.rate
            and not (ref.unavailable or app.unavailable) and connections in (None, app.connections)]


def _pair_target(name: str, pairs: list, scenario: str, bound: float, reference: str,
                 connections: int | None = None, single: tuple[Outcome | None, Outcome | None] = (None, None)) -> Target:
    """The median of the pairs' ratios; without pairs (--pairs 0), the single pass's ratio, said so."""
    usable = usable_pairs(pairs, scenario, connections)
    if not usable:
        ref, app = single
        if ref and app and ref.rate and app.rate and connections in (None, app.connections):
            return Target(name, app.rate / ref.rate, bound, "ratio", f"single pass beside {reference} (no pairs)")
        return Target(name, None, bound, "ratio", f"no interleaved pairs of {scenario} and {reference}")
    ratios = [app.rate / ref.rate for ref, app in usable]
    return Target(name, median(ratios), bound, "ratio", f"median of {len(usable)} interleaved pairs with {reference}")


def targets(measured) -> list[Target]:
    """Every target of the performance issue, judged on medians of interleaved pairs where there are any."""
    pairs = measured.pairs
    usable = lambda o: o if o is not None and not o.unavailable else None  # noqa: E731
    found = {o.name: usable(o) for o in measured.ceilings + measured.outcomes}
    ceiling = usable(measured.ceilings[0]) if measured.ceilings else None
    hello = found.get(HELLO_NAME)
    single_cc = found.get("client_credentials")
    counts = (sorted({app.connections for _, app in usable_pairs(pairs, "client_credentials")})
              or [single_cc.connections if single_cc else None])
    judged = [_pair_target(f"client_credentials / ceiling" + (f" at -c{c}" if c else ""), pairs,
                           "client_credentials", RATE_TARGETS["client_credentials"], "the ceiling", c,
                           (ceiling, single_cc))
              for c in counts]
    for scenario, label in (("code flow (authorize+token)", "code flow"), ("refresh_token", "refresh_token")):
        judged.append(_pair_target(f"{label} / ceiling", pairs, scenario, RATE_TARGETS[scenario], "the ceiling",
                                   single=(ceiling, found.get(scenario))))
    for scenario in ("discovery", "jwks"):
        judged.append(_pair_target(f"{scenario} / hello-world Flask", pairs, scenario, RATE_TARGETS[scenario],
                                   "the hello-world endpoint", single=(hello, found.get(scenario))))
    login = next((o for o in measured.outcomes if o.name == "password login" and not o.unavailable), None)
    if login and measured.bcrypt:
        judged.append(Target("password login / raw bcrypt", login.rate / measured.bcrypt.per_second, BCRYPT_TARGET,
                             "ratio", "raw bcrypt measured right before"))
    else:
        judged.append(Target("password login / raw bcrypt", None, BCRYPT_TARGET, "ratio", "login not measured"))
    sampler = measured.sampler
    judged.append(Target("peak RSS master + workers", sampler.peak_rss_kib / 1024 if sampler.peak_rss_kib else None,
                         RSS_TARGET_MIB, "MiB", f"sampled every {sampler.every}s under load"))
    return judged


def summary_lines(judged: list[Target]) -> list[str]:
    """The closing table: each target with its figure, bound and verdict."""
    lines = ["", f"{'target':<44}{'figure':>10}{'bound':>10}  verdict       basis"]
    for target in judged:
        if target.unit == "MiB":
            figure = "-" if target.figure is None else f"{target.figure:.0f} MiB"
            bound = f"<= {target.bound:.0f}"
        else:
            figure = "-" if target.figure is None else f"{target.figure:.1%}"
            bound = f">= {target.bound:.1%}"
        lines.append(f"{target.name:<44}{figure:>10}{bound:>10}  {target.verdict:<12}  {target.basis}")
    return lines


def _outcome_json(outcome: Outcome, reference: Outcome | None = None) -> dict:
    result = outcome.result
    data = {"name": outcome.name, "unit": outcome.unit, "connections": outcome.connections,
            "rate": round(outcome.rate, 2), "unavailable": outcome.unavailable,
            "p50_ms": result.p50 if result else None, "p99_ms": result.p99 if result else None,
            "errors": outcome.error_count, "counters": result.counters if result else {},
            "cpu_app_ms": round(outcome.cpu.app_ms, 3) if outcome.cpu else None,
            "cpu_db_ms": round(outcome.cpu.db_ms, 3) if outcome.cpu else None,
            "worker_balance": round(outcome.balance, 3) if outcome.balance is not None else None,
            "unbalanced_reruns": outcome.reruns}
    if reference is not None and reference.rate and outcome.rate:
        data["reference"] = reference.name
        data["ratio"] = round(outcome.rate / reference.rate, 4)
        if outcome.cpu and reference.cpu and outcome.cpu.total_ms:
            data["ratio_by_cpu"] = round(reference.cpu.total_ms / outcome.cpu.total_ms, 4)
    return data


def as_json(run: dict, measured) -> dict:
    """Every figure of one run: scenarios with their ratio to the ceiling, pairs, memory, SQL, targets."""
    ceiling = measured.ceilings[0] if measured.ceilings else None
    hello = next((o for o in measured.ceilings if o.name == HELLO_NAME), None)
    sampler = measured.sampler
    return {
        "run": run,
        "ceilings": [_outcome_json(o) for o in measured.ceilings],
        "scenarios": [_outcome_json(o, hello if o.name in HELLO_COMPARED else ceiling) for o in measured.outcomes],
        "pairs": [_outcome_json(app, ref) | {"reference_rate": round(ref.rate, 2)} for ref, app in measured.pairs],
        "bcrypt": asdict(measured.bcrypt) if measured.bcrypt else None,
        "memory": {"peak_rss_mib": round(sampler.peak_rss_kib / 1024, 1),
                   "peak_pss_mib": round(sampler.peak_pss_kib / 1024, 1), "processes": sampler.processes,
                   "processes_seen": len(sampler.seen)},
        "sql": measured.sql,
        "targets": [{"name": t.name, "figure": None if t.figure is None else round(t.figure, 4), "bound": t.bound,
                     "unit": t.unit, "pass": t.passed, "verdict": t.verdict, "basis": t.basis}
                    for t in targets(measured)],
    }
