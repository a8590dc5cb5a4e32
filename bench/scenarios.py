"""The measured scenarios: how each is checked, what wrk script drives it, what rate it reports."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench import probe
from bench.server import cpu_seconds, postgres_backends
from bench.wrk import WrkResult, run_wrk


@dataclass
class Load:
    """How hard and how long to push: wrk's threads/connections and the seconds of each run."""

    seconds: int = 10
    warmup: int = 2
    connections: int = 4
    threads: int = 1


@dataclass
class Context:
    """What the scenarios share within one run against one server."""

    base_url: str
    env: dict
    state_dir: Path
    server_pids: Callable[[], list[int]] = lambda: []
    worker_pids: Callable[[], list[int]] = lambda: []  # the gunicorn workers alone (balance_of)
    database: str | None = None
    cookie: str = ""
    sample_token: str | None = None
    handed_out: set[str] = field(default_factory=set)  # refresh tokens already given to a wrk run
    etags: dict[str, str] = field(default_factory=dict)  # path -> the ETag a conditional GET sends

    @property
    def pool_dir(self) -> Path:
        return self.state_dir / "refresh-pool"

    @property
    def pool_file(self) -> Path:
        return self.state_dir / "refresh-pool.txt"


@dataclass
class Scenario:
    name: str
    path: str
    check: Callable[[Context], None]
    script: str | None = None
    counter: str | None = None  # a Lua counter whose rate is the scenario's rate (e.g. flows)
    unit: str = "req/s"
    extra_env: Callable[[Context], dict] = lambda ctx: {}
    before: Callable[[Context, str], None] = lambda ctx, phase: None  # phase: "warmup" or "measure"
    # The shortest measured run. wrk counts only the responses that arrive before it stops, while the
    # requests in flight then have used CPU and cores: about half a request per connection. For a
    # 1 ms request that is nothing; for a login (0.25 s of CPU, 0.5 s at 4 connections on 2 cores) it
    # was a tenth of a 3 s run, which read as a login 10% slower than it is.
    min_seconds: int = 0


@dataclass
class CpuCost:
    """CPU milliseconds per counted event (request or flow): gunicorn processes, PostgreSQL backends."""

    app_ms: float
    db_ms: float

    @property
    def total_ms(self) -> float:
        return self.app_ms + self.db_ms


class CpuMeter:
    """CPU time the server and its database backends spend between start() and stop(), and how
    evenly the gunicorn workers shared it."""

    def __init__(self, ctx: "Context"):
        self.ctx = ctx

    def _read(self) -> tuple[float, float]:
        db_pids = postgres_backends(self.ctx.database) if self.ctx.database else []
        return cpu_seconds(self.ctx.server_pids()), cpu_seconds(db_pids)

    def _per_worker(self) -> dict[int, float]:
        return {pid: cpu_seconds([pid]) for pid in self.ctx.worker_pids()}

    def start(self) -> None:
        self._start = self._read()
        self._workers = self._per_worker()

    def stop(self, events: int) -> CpuCost | None:
        app, db = self._read()
        self.balance = balance_of(self._workers, self._per_worker())
        if events <= 0:
            return None
        return CpuCost((app - self._start[0]) * 1000 / events, max(db - self._start[1], 0.0) * 1000 / events)


def balance_of(before: dict[int, float], after: dict[int, float]) -> float | None:
    """The least busy worker's CPU over the busiest's during a run (1.0: even), None with one worker.

    wrk opens its few connections at once and gunicorn keeps each on the worker that accepted it, so
    a run may land three or four of its connections on one worker: the rate then measures how the
    connections fell, not the server (a pair swung from 28% to 258% that way). A worker recycled in
    the run (max_requests) is left out.
    """
    spent = [after[pid] - before[pid] for pid in before if pid in after]
    if len(spent) < 2 or max(spent) <= 0:
        return None
    return min(spent) / max(spent)


@dataclass
class Outcome:
    """One scenario's figures, or why it could not run."""

    name: str
    unit: str = "req/s"
    rate: float = 0.0
    result: WrkResult | None = None
    unavailable: str | None = None
    cpu: CpuCost | None = None
    connections: int = 0
    balance: float | None = None  # balance_of the measured run
    reruns: int = 0  # measured runs discarded as unbalanced before this one

    @property
    def error_count(self) -> int:
        if self.result is None:
            return 0
        failed = sum(v for k, v in self.result.counters.items() if "failed" in k)
        return self.result.non_2xx + self.result.socket_errors + failed


def wait_until_idle(ctx: Context, *, interval: float = 0.1, idle_cpu: float = 0.005, limit: float = 10.0) -> None:
    """Return once the server spends under 5% of a core, or after `limit` seconds.

    A finished wrk run closes its connections, but gunicorn still completes the requests it had read:
    without this wait a warm-up's last logins ran into the measured run, billing it their CPU and
    taking the cores it measures.
    """
    deadline = time.monotonic() + limit
    spent = cpu_seconds(ctx.server_pids())
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = cpu_seconds(ctx.server_pids())
        if now - spent < idle_cpu:
            return
        spent = now


# A measured run whose least busy worker spent under this share of the busiest one's CPU is run again,
# at most UNBALANCED_RERUNS times (the most even run is kept): see balance_of.
BALANCE_FLOOR = 0.6
UNBALANCED_RERUNS = 2


def run_scenario(scenario: Scenario, ctx: Context, load: Load) -> Outcome:
    """Check the scenario works, warm it up, then measure it with wrk (again when its connections fell
    unevenly on the workers)."""
    try:
        scenario.check(ctx)
        env = {**ctx.env, **probe.wrk_env(), **scenario.extra_env(ctx)}
        url = ctx.base_url + scenario.path
        if load.warmup:
            scenario.before(ctx, "warmup")
            run_wrk(url, seconds=load.warmup, connections=load.connections, threads=load.threads,
                    script=scenario.script, env=env)
        best = None
        for attempt in range(UNBALANCED_RERUNS + 1):
            outcome = _measured_run(scenario, ctx, load, url, env)
            outcome.reruns = attempt
            if best is None or (outcome.balance or 0) > (best.balance or 0):
                best = outcome
            if outcome.balance is None or outcome.balance >= BALANCE_FLOOR:
                break
        return best
    except probe.Unavailable as exc:
        return Outcome(scenario.name, scenario.unit, unavailable=str(exc), connections=load.connections)
    except OSError as exc:
        return Outcome(scenario.name, scenario.unit, unavailable=f"{type(exc).__name__}: {exc}",
                       connections=load.connections)


def _measured_run(scenario: Scenario, ctx: Context, load: Load, url: str, env: dict) -> Outcome:
    scenario.before(ctx, "measure")
    wait_until_idle(ctx)
    meter = CpuMeter(ctx)
    meter.start()
    result = run_wrk(url, seconds=max(load.seconds, scenario.min_seconds), connections=load.connections,
                     threads=load.threads, script=scenario.script, env=env)
    if scenario.counter:
        events = result.counters.get(scenario.counter, 0)
    else:
        # When wrk stops, each of its connections has one request out, which the server completes
        # uncounted by wrk: once the server is idle, the CPU spent is that of all of them.
        wait_until_idle(ctx)
        events = result.requests + load.connections
    rate = result.rate_of(scenario.counter) if scenario.counter else result.rps
    cpu = meter.stop(events)
    return Outcome(scenario.name, scenario.unit, rate=rate, result=result, cpu=cpu, connections=load.connections,
                   balance=meter.balance)


def _check_discovery(ctx: Context) -> None:
    probe.check_get_json(ctx.base_url, "/.well-known/openid-configuration", "issuer")


def _check_jwks(ctx: Context) -> None:
    probe.check_get_json(ctx.base_url, "/oauth2/jwks", "keys")


def _check_client_credentials(ctx: Context) -> None:
    ctx.sample_token = probe.client_credentials_token(ctx.base_url)


def _check_code_flow(ctx: Context) -> None:
    probe.code_flow(ctx.base_url, ctx.cookie)
    ctx.pool_dir.mkdir(parents=True, exist_ok=True)


def _check_refresh(ctx: Context) -> None:
    probe.refresh(ctx.base_url, ctx.cookie)


WARMUP_REFRESH_TOKENS = 64
MEASURED_REFRESH_TOKENS = 512


def _feed_refresh_pool(ctx: Context, phase: str) -> None:
    """Write the pool file refresh.lua spends, from the refresh tokens the code-flow runs harvested.

    refresh.lua chains on the rotated tokens, so a run spends about one pool token per connection;
    each pool token is handed out once (the warm-up gets a few, each measured run a larger slice),
    so no run ever presents a spent token. Tokens harvested by later code-flow runs (the pairs)
    are picked up as they appear.
    """
    harvested = [line for path in sorted(ctx.pool_dir.glob("*.txt")) for line in path.read_text().split()]
    fresh = [token for token in harvested if token not in ctx.handed_out]
    if not fresh:
        raise probe.Unavailable("the code-flow scenario harvested no refresh tokens to spend")
    batch = fresh[:WARMUP_REFRESH_TOKENS if phase == "warmup" else MEASURED_REFRESH_TOKENS]
    ctx.handed_out.update(batch)
    ctx.pool_file.write_text("\n".join(batch) + "\n")


def _check_not_modified(path: str) -> Callable[[Context], None]:
    """The document's ETag, and proof that sending it back answers 304 (RFC 9110 section 15.4.5)."""
    def check(ctx: Context) -> None:
        first = probe.call(ctx.base_url, "GET", path)
        etag = first.headers.get("etag")
        if first.status != 200 or not etag:
            raise probe.Unavailable(f"GET {path} sends no ETag ({first.describe()})")
        again = probe.call(ctx.base_url, "GET", path, {"If-None-Match": etag})
        if again.status != 304:
            raise probe.Unavailable(f"GET {path} with If-None-Match: {again.describe()}, not 304")
        ctx.etags[path] = etag
    return check


def _check_login(ctx: Context) -> None:
    probe.login(ctx.base_url)


APP_SCENARIOS = [
    Scenario("client_credentials", "/oauth2/token", _check_client_credentials, script="client_credentials.lua"),
    Scenario("code flow (authorize+token)", "/oauth2/authorize", _check_code_flow, script="code_flow.lua",
             counter="flows", unit="flows/s",
             extra_env=lambda ctx: {"BENCH_COOKIE": ctx.cookie, "BENCH_POOL_DIR": str(ctx.pool_dir)}),
    Scenario("refresh_token", "/oauth2/token", _check_refresh, script="refresh.lua", counter="refreshed",
             extra_env=lambda ctx: {"BENCH_POOL_FILE": str(ctx.pool_file)}, before=_feed_refresh_pool),
    Scenario("discovery", "/.well-known/openid-configuration", _check_discovery),
    Scenario("jwks", "/oauth2/jwks", _check_jwks),
    Scenario("discovery 304", "/.well-known/openid-configuration",
             _check_not_modified("/.well-known/openid-configuration"), script="conditional_get.lua",
             extra_env=lambda ctx: {"BENCH_IF_NONE_MATCH": ctx.etags["/.well-known/openid-configuration"]}),
    Scenario("jwks 304", "/oauth2/jwks", _check_not_modified("/oauth2/jwks"), script="conditional_get.lua",
             extra_env=lambda ctx: {"BENCH_IF_NONE_MATCH": ctx.etags["/oauth2/jwks"]}),
    Scenario("password login", "/api/v1/auth/login", _check_login, script="login.lua", min_seconds=15),
]

def _check_ceiling(path: str) -> Callable[[Context], None]:
    def check(ctx: Context) -> None:
        answer = probe.call(ctx.base_url, "POST", path, {"Authorization": f"Basic {probe.BASIC}",
                            "Content-Type": "application/x-www-form-urlencoded"}, "grant_type=client_credentials")
        if answer.status != 200:
            raise probe.Unavailable(f"POST {path}: {answer.describe()}")
    return check


CEILING_SCENARIOS = [
    Scenario("ceiling (joserfc sign, no DB)", "/oauth2/token", _check_ceiling("/oauth2/token"),
             script="client_credentials.lua"),
    Scenario("ceiling + jti INSERT (psycopg)", "/oauth2/token-persisted", _check_ceiling("/oauth2/token-persisted"),
             script="client_credentials.lua", extra_env=lambda ctx: {"BENCH_TOKEN_PATH": "/oauth2/token-persisted"}),
]


def _check_hello(ctx: Context) -> None:
    probe.check_get_json(ctx.base_url, "/hello", "hello")


# Discovery and JWKS are compared with this: plain Flask, one route, a small JSON body, same server.
HELLO = Scenario("hello-world Flask", "/hello", _check_hello)
