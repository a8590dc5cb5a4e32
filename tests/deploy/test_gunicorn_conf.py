"""idp/gunicorn_conf.py: the worker settings a slow client cannot exhaust, and the one start-up warning
about per-worker counters without Redis (issue #9 items 1 and 7)."""
from __future__ import annotations

import importlib
import logging
import re
from types import SimpleNamespace

import pytest

from tests.deploy.processes import ROOT

SETTINGS = ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_BIND", "GUNICORN_TIMEOUT", "GUNICORN_KEEPALIVE",
            "GUNICORN_MAX_REQUESTS", "GUNICORN_MAX_REQUESTS_JITTER", "REDIS_URL", "FLASK_ENV")
WARNING = "rate limits are per worker without Redis; set REDIS_URL"


@pytest.fixture
def load_conf(monkeypatch):
    """Import the config module afresh under the given environment (never reading a developer's .env)."""
    monkeypatch.setenv("FLASK_SKIP_DOTENV", "1")
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)

    def load(**env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        import idp.gunicorn_conf

        return importlib.reload(idp.gunicorn_conf)

    return load


def test_defaults_are_threaded_workers_with_bounded_timeouts(load_conf):
    """gthread (idle connections wait in a poller, not in a worker), at least two workers, short keep-alive."""
    conf = load_conf()
    assert conf.worker_class == "gthread" and conf.workers >= 2 and conf.threads == 4
    assert conf.bind == "0.0.0.0:8000" and conf.timeout == 30 and conf.keepalive == 5


def test_defaults_are_one_worker_per_usable_core_recycled_rarely(load_conf, monkeypatch):
    """The measured choice (bench/README.md, Server settings): one worker per CPU this process may use, at
    least two, and recycling every ~100000 requests, since each new worker imports the app again."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2})
    conf = load_conf()
    assert (conf.workers, conf.max_requests, conf.max_requests_jitter) == (3, 100_000, 10_000)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0})
    assert load_conf().workers == 2


def test_environment_sets_workers_threads_and_bind(load_conf):
    """WEB_CONCURRENCY, GUNICORN_THREADS and GUNICORN_BIND override the defaults."""
    conf = load_conf(WEB_CONCURRENCY="3", GUNICORN_THREADS="8", GUNICORN_BIND="127.0.0.1:9000")
    assert (conf.workers, conf.threads, conf.bind) == (3, 8, "127.0.0.1:9000")


def test_a_malformed_number_stops_start_up_naming_the_variable(load_conf):
    """A typo in GUNICORN_THREADS stops gunicorn with a message naming it, not a traceback."""
    with pytest.raises(SystemExit, match="GUNICORN_THREADS must be a positive whole number, got 'four'"):
        load_conf(GUNICORN_THREADS="four")


def test_access_log_leaves_out_query_strings(load_conf):
    """The access log has the path (%(U)s), never the query (%(q)s) or the whole request line (%(r)s)."""
    log_format = load_conf().access_log_format
    assert "%(U)s" in log_format and "%(q)s" not in log_format and "%(r)s" not in log_format


def started(conf, workers: int, caplog) -> list[str]:
    logger = logging.getLogger("test.gunicorn.master")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        conf.on_starting(SimpleNamespace(cfg=SimpleNamespace(workers=workers), log=logger))
    return [record.getMessage() for record in caplog.records if WARNING in record.getMessage()]


def test_several_workers_without_redis_warn_once_at_start(load_conf, caplog):
    """Development with two workers and no REDIS_URL logs the warning exactly once, from the master."""
    assert len(started(load_conf(FLASK_ENV="development"), 2, caplog)) == 1


@pytest.mark.parametrize("env, workers", [({"REDIS_URL": "redis://127.0.0.1:6379/0"}, 2), ({}, 1),
                                          ({"FLASK_ENV": "production"}, 4)])
def test_no_warning_with_redis_one_worker_or_in_production(load_conf, caplog, env, workers):
    """Redis shares the counters, one worker has nothing to share, production refuses to start without Redis."""
    assert started(load_conf(**env), workers, caplog) == []


def test_env_example_lists_every_variable_the_gunicorn_settings_read():
    """.env.example names each variable idp/gunicorn_conf.py reads, as it does for idp/config.py."""
    source = (ROOT / "idp" / "gunicorn_conf.py").read_text()
    read = set(re.findall(r'(?:_int|os\.environ\.get)\("([A-Z0-9_]+)"', source))
    listed = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert {"WEB_CONCURRENCY", "GUNICORN_BIND"} <= read and read - listed == set()
