"""Where a scenario's time goes: cProfile over N in-process requests; `python bench/hotspots.py NAME`.

Prepares the bench's stores like run.py, then re-runs itself inside the app's environment and
profiles the steady state of one request kind (warm caches), printing the costliest functions by
own time and by cumulative time. NAME: client_credentials, authorize, code, refresh, login, discovery, jwks; or `ceiling` / `hello`,
the bench's references (bench/ceiling_app.py) in the same process, to read a scenario's in-process
figure against (`--time` both, one after the other: CPU time is steadier than rates on a busy machine).
BENCH_DATABASE / BENCH_REDIS_DB pick other stores than the bench's own (bench/prepare.py).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import probe  # noqa: E402


def request_makers(app) -> dict:
    from bench.sql_count import authorize_query, browser_cookie

    client = app.test_client(use_cookies=False)
    headers = {"Authorization": f"Basic {probe.BASIC}"}
    cookie = browser_cookie(app)

    def code() -> str:
        location = client.get(f"/oauth2/authorize?{authorize_query()}", headers={"Cookie": cookie}).headers["Location"]
        return location.split("code=", 1)[1].split("&", 1)[0]

    def exchange(value: str):
        return client.post("/oauth2/token", headers=headers, data={
            "grant_type": "authorization_code", "code": value, "redirect_uri": probe.REDIRECT_URI,
            "code_verifier": probe.CODE_VERIFIER})

    return {
        "client_credentials": (lambda: None, lambda _: client.post(
            "/oauth2/token", headers=headers, data={"grant_type": "client_credentials"})),
        "authorize": (lambda: None, lambda _: client.get(f"/oauth2/authorize?{authorize_query()}",
                                                         headers={"Cookie": cookie})),
        "code": (code, exchange),
        "refresh": (lambda: exchange(code()).get_json()["refresh_token"], lambda token: client.post(
            "/oauth2/token", headers=headers, data={"grant_type": "refresh_token", "refresh_token": token})),
        "login": (lambda: None, lambda _: client.post("/api/v1/auth/login", json={
            "email": probe.LOGIN_EMAIL, "password": probe.LOGIN_PASSWORD})),
        "discovery": (lambda: None, lambda _: client.get("/.well-known/openid-configuration")),
        "jwks": (lambda: None, lambda _: client.get("/oauth2/jwks")),
    }


def reference_makers() -> dict:
    """The ceiling's token endpoint and the hello-world route, driven like the app's scenarios."""
    from bench import ceiling_app

    client = ceiling_app.create_app().test_client(use_cookies=False)
    headers = {"Authorization": f"Basic {probe.BASIC}"}
    return {
        "ceiling": (lambda: None, lambda _: client.post("/oauth2/token", headers=headers,
                                                        data={"grant_type": "client_credentials"})),
        "hello": (lambda: None, lambda _: client.get("/hello")),
    }


def profile_inside(name: str, count: int, top: int, timing: bool = False) -> None:
    """Profile `count` requests of kind `name` (their set-up requests are not profiled)."""
    if name in ("ceiling", "hello"):
        prepare, send = reference_makers()[name]
    else:
        from idp import create_app

        prepare, send = request_makers(create_app())[name]
    send(prepare())
    inputs = [prepare() for _ in range(count)]
    if timing:
        started, cpu = time.perf_counter(), time.process_time()
        for value in inputs:
            response = send(value)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"{name}: HTTP {response.status_code}; {count} requests; per request {cpu / count * 1000:.3f} ms CPU, "
              f"{wall / count * 1000:.3f} ms wall (in-process, test client, no profiler)")
        return
    # process_time: waiting on PostgreSQL is not CPU this process can save.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for value in inputs:
        response = send(value)
    profiler.disable()
    print(f"last response: HTTP {response.status_code}; {count} requests profiled")
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("-n", "--count", type=int, default=300)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--time", action="store_true", help="CPU and wall time per request, without the profiler")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        profile_inside(args.name, args.count, args.top, args.time)
        return 0
    from bench.prepare import PYTHON, prepare

    with tempfile.TemporaryDirectory(prefix="authy2-profile-") as state_dir:  # keys and secrets: removed after
        prepared = prepare(Path(state_dir))
        return subprocess.call([str(PYTHON), __file__, args.name, "-n", str(args.count), "--top", str(args.top),
                                "--inner", *(["--time"] if args.time else [])], env=prepared.env)


if __name__ == "__main__":
    sys.exit(main())
