"""gunicorn settings for Authy2: `gunicorn -c python:idp.gunicorn_conf wsgi:app`.

The one place the worker settings live (the Dockerfile, docker-compose and the tests use it). These are
settings of the server process, not of the app, so they are read here rather than in `idp.config`; the
project's `.env` is loaded first, exactly as `wsgi.py` does, and variables already set win.
This module runs in the gunicorn master: it imports nothing of the app beyond `idp.config`.
"""
from __future__ import annotations

import os

from idp.config import load_env_file

load_env_file()


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{name} must be a positive whole number, got {raw!r}")
    return int(raw)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this container may use, not the host's
    except AttributeError:
        return os.cpu_count() or 1


bind = os.environ.get("GUNICORN_BIND") or "0.0.0.0:8000"

# A sync worker is taken whole by one connection until its client finishes sending. gthread parks idle
# and keep-alive connections in a poller (a new one's first bytes are awaited in a thread for up to 5 s),
# so a few idle connections no longer stop a worker; a flood of them, or a client dribbling its request,
# is nginx's to absorb (docs/deploy/nginx.conf).
worker_class = "gthread"
# One worker per core: the work is mostly Python on the CPU, so on 2 cores 3 or 4 workers served no more
# (`bench/run.py --matrix`) while each added about 118 MiB.
workers = _int("WEB_CONCURRENCY", max(2, _cores()))
# Threads share a worker's GIL, but requests wait mostly on the database, Redis and bcrypt (which
# releases the GIL), so a few threads per worker multiply what one worker serves at once.
threads = _int("GUNICORN_THREADS", 4)

# A worker whose main loop is silent this long is killed and replaced.
timeout = _int("GUNICORN_TIMEOUT", 30)
# On SIGTERM or a restart, requests in flight get this long to finish.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20)
# Idle keep-alive connections are closed soon: nginx keeps its own upstream connections open for
# less (docs/deploy/nginx.conf, keepalive_timeout 4s), so it never reuses one gunicorn is closing.
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# Workers are recycled now and then, at staggered counts, so a slow leak never grows without bound.
# Rarely: a new worker imports the app again (about 1.2 s of CPU), which every 1000 requests added
# about 1.2 ms of CPU to each request, as much as a client_credentials token costs (bench/README.md).
max_requests = _int("GUNICORN_MAX_REQUESTS", 100_000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 10_000)

# The request line may carry a signed request object; nginx allows 8 KiB lines too (large_client_header_buffers).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# X-Forwarded-Proto is honoured only from these peers; the client's address is the app's business
# (TRUSTED_PROXY_COUNT), and the issuer, never the request, decides the URLs the app writes.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1,::1"

# The heartbeat file on a RAM disk: a container's overlay file system can stall it (gunicorn's Docker advice).
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

accesslog = "-"
errorlog = "-"
# The path without its query string: emailed links and authorization requests carry secrets there.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss %({x-request-id}o)s'
proc_name = "authy2"
# Newer gunicorns open a control socket (for gunicornc) in $HOME: unused here, and shared by every gunicorn of a user.
control_socket_disable = True


def on_starting(server) -> None:
    """Warn once, from the master, that several workers without Redis each keep their own counters."""
    production = (os.environ.get("FLASK_ENV") or "development") == "production"
    if server.cfg.workers > 1 and not os.environ.get("REDIS_URL") and not production:
        server.log.warning("%d workers and no REDIS_URL: rate limits are per worker without Redis; set REDIS_URL",
                           server.cfg.workers)
