"""Run wrk against a loopback URL and parse its --latency report."""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

LUA_DIR = Path(__file__).resolve().parent / "lua"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_LATENCY_LINE = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_TOTAL_LINE = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")
_RPS_LINE = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_BENCH_LINE = re.compile(r"^BENCH (.*)$", re.MULTILINE)


@dataclass
class WrkResult:
    """What one wrk run measured: rate, latency percentiles (ms) and errors."""

    requests: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    non_2xx: int = 0
    socket_errors: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    raw: str = ""

    @property
    def p50(self) -> float | None:
        return self.latency_ms.get("50")

    @property
    def p99(self) -> float | None:
        return self.latency_ms.get("99")

    def rate_of(self, counter: str) -> float:
        """Events per second of a counter the Lua script reported (e.g. completed flows)."""
        return self.counters.get(counter, 0) / self.seconds if self.seconds else 0.0


def parse_wrk(output: str) -> WrkResult:
    """Parse wrk's text report, including `BENCH key=value ...` lines our Lua scripts print."""
    result = WrkResult(raw=output)
    for percent, value, unit in _LATENCY_LINE.findall(output):
        result.latency_ms[percent] = float(value) * _UNITS[unit]
    if match := _TOTAL_LINE.search(output):
        result.requests = int(match.group(1))
        result.seconds = float(match.group(2)) * _UNITS[match.group(3)] / 1000.0
    if match := _RPS_LINE.search(output):
        result.rps = float(match.group(1))
    if match := _NON_2XX.search(output):
        result.non_2xx = int(match.group(1))
    if match := _SOCKET_ERRORS.search(output):
        result.socket_errors = sum(int(n) for n in match.groups())
    for line in _BENCH_LINE.findall(output):
        for pair in line.split():
            key, _, value = pair.partition("=")
            result.counters[key] = result.counters.get(key, 0) + int(value)
    return result


def run_wrk(url: str, *, seconds: int, connections: int, threads: int = 1, script: str | None = None,
            env: dict | None = None) -> WrkResult:
    """One bounded wrk run against a loopback URL; `script` names a file in bench/lua/."""
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"refusing to load anything but loopback: {url}")
    command = ["wrk", "--latency", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    if script:
        command += ["-s", str(LUA_DIR / script)]
    command.append(url)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return parse_wrk(done.stdout)
