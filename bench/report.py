"""Print the bench's figures: a table of rates, latencies, ratios to the ceilings, memory, SQL."""
from __future__ import annotations

from bench.bcrypt_rate import BcryptRate
from bench.scenarios import Outcome

CEILING_TARGETS = {"client_credentials": 0.90}
BCRYPT_TARGET = 0.90
RSS_TARGET_MIB = 300


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}ms"


def _cpu(outcome: Outcome) -> str:
    cpu = outcome.cpu
    return "-" if cpu is None else f"{cpu.app_ms:.2f}+{cpu.db_ms:.2f}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "BELOW TARGET"


TOKEN_SCENARIOS = ("client_credentials", "refresh_token")


def scenario_lines(outcomes: list[Outcome], ceilings: list[Outcome], bcrypt: BcryptRate | None) -> list[str]:
    """One line per scenario; ratios against the plain ceiling (ceilings[0]) and, for token grants
    that persist one token row, against the ceiling that also INSERTs one (ceilings[1])."""
    ceiling = ceilings[0] if ceilings else None
    persisted = ceilings[1] if len(ceilings) > 1 else None
    lines = [f"{'scenario':<30}{'rate':>17}{'p50':>10}{'p99':>10}{'errors':>7}{'CPU ms app+db':>17}  ratio / target"]
    for outcome in ceilings + outcomes:
        if outcome.unavailable:
            lines.append(f"{outcome.name:<30}unavailable: {outcome.unavailable}")
            continue
        result = outcome.result
        line = (f"{outcome.name:<30}{outcome.rate:>9.1f} {outcome.unit:<7}{_ms(result.p50):>10}"
                f"{_ms(result.p99):>10}{outcome.error_count:>7}{_cpu(outcome):>17}  ")
        if outcome in ceilings:
            lines.append(line + ("(the ceiling: 100%)" if outcome is ceiling else _ratios(outcome, ceiling, None)))
            continue
        text = _ratios(outcome, ceiling, bcrypt)
        if outcome.name in TOKEN_SCENARIOS and persisted and persisted.rate and not persisted.unavailable:
            text += f"; {outcome.rate / persisted.rate:.1%} of ceiling + INSERT"
        lines.append(line + text)
    return lines


def _ratios(outcome: Outcome, ceiling: Outcome | None, bcrypt: BcryptRate | None) -> str:
    notes = []
    if ceiling and ceiling.rate and not ceiling.unavailable:
        ratio = outcome.rate / ceiling.rate
        target = CEILING_TARGETS.get(outcome.name)
        text = f"{ratio:6.1%} of ceiling"
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
    """Each paired scenario over the ceiling measured right before it: every pair's ratio, the median,
    and the median app rate paired with the median ceiling rate."""
    lines = []
    for name in dict.fromkeys(app.name for _, app in pairs):
        usable = [(ceiling, app) for ceiling, app in pairs if app.name == name and ceiling.rate and app.rate
                  and not (ceiling.unavailable or app.unavailable)]
        if not usable:
            continue
        ratios = [app.rate / ceiling.rate for ceiling, app in usable]
        by_cpu = [ceiling.cpu.total_ms / app.cpu.total_ms for ceiling, app in usable if ceiling.cpu and app.cpu]
        line = (f"{name} / ceiling in {len(usable)} interleaved {seconds}s pairs: "
                + ", ".join(f"{r:.1%}" for r in ratios) + f"; median {_median(ratios):.1%}")
        target = CEILING_TARGETS.get(name)
        if target is not None:
            line += f" (target >= {target:.0%}: {_verdict(_median(ratios) >= target)})"
        if by_cpu:
            line += f", median {_median(by_cpu):.1%} by CPU cost"
        line += (f"; rates: median {_median([a.rate for _, a in usable]):.1f} {usable[0][1].unit} beside a median "
                 f"ceiling of {_median([c.rate for c, _ in usable]):.0f} req/s")
        lines.append(line)
    return [""] + lines if lines else []


def _median(values: list[float]) -> float:
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def memory_line(peak_rss_kib: int, peak_pss_kib: int, processes: int, by_pid: dict[int, int]) -> str:
    """The summed peak, and each process's own peak (master first: it has the lowest pid)."""
    rss_mib = peak_rss_kib / 1024
    each = " + ".join(f"{by_pid[pid] / 1024:.0f}" for pid in sorted(by_pid))
    return (f"memory under load: peak RSS of gunicorn master + workers ({processes} processes) = "
            f"{rss_mib:.1f} MiB (per process {each} MiB; PSS {peak_pss_kib / 1024:.1f} MiB); "
            f"target < {RSS_TARGET_MIB} MiB: {_verdict(rss_mib < RSS_TARGET_MIB)}")


def sql_lines(counts: dict | str) -> list[str]:
    if isinstance(counts, str):
        return [f"SQL statements per request: unavailable: {counts}"]
    lines = ["SQL statements per request (steady state, in-process, before_cursor_execute):"]
    for name, result in counts.items():
        status = "" if result["ok"] else f"  (request failed: HTTP {result['status']}, count not meaningful)"
        lines.append(f"  {name:<28}{result['count']:>4}{status}")
    return lines
