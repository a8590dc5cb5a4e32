"""Processes a fault test starts and kills itself, on loopback: a private redis-server and the app
under gunicorn (real worker processes, each with its own Redis breaker and rate limiter)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not come up within {timeout} s")


class RedisServer:
    """redis-server on a free loopback port, without persistence, in its own folder."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(self.answers, 5, "redis-server")

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2).ping())
        except redis.RedisError:
            return False

    def keys(self, pattern: str) -> list[bytes]:
        return redis.Redis(port=self.port, socket_timeout=1).keys(pattern)

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=5)


class GunicornApp:
    """`gunicorn wsgi:app` from the checkout with the given environment, threaded workers."""

    def __init__(self, directory: Path, environment: dict[str, str], workers: int = 2, threads: int = 8):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "gunicorn.log"
        self._config = directory / "gunicorn.conf.py"  # empty: no gunicorn.conf.py of the checkout applies
        self._config.write_text("")
        self.environment = {**os.environ, **environment}
        self._workers, self._threads = workers, threads
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        root = Path(__file__).resolve().parents[2]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(self._config), "--no-control-socket",
                 "-b", f"127.0.0.1:{self.port}", "-w", str(self._workers), "-k", "gthread",
                 "--threads", str(self._threads), "wsgi:app"],
                cwd=root, env=self.environment, stdout=log, stderr=subprocess.STDOUT)
        _wait(self._answers, 20, "gunicorn")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-2000:]}")
        try:
            return requests.get(f"{self.url}/api/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
