"""The raw bcrypt verification rate on this machine: the ceiling of any password login."""
from __future__ import annotations

import base64
import hashlib
import multiprocessing
import time
from dataclasses import dataclass

import bcrypt


def _prehash(password: str) -> bytes:
    # The same SHA-256 + base64 pre-hash idp.security.passwords applies before bcrypt.
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def _verify_for(args: tuple[bytes, float]) -> tuple[int, float]:
    """(verifications done, CPU seconds they took) in one process for `seconds` of wall time."""
    stored, seconds = args
    candidate = _prehash("UserPass123!")
    count = 0
    cpu_started = time.process_time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        bcrypt.checkpw(candidate, stored)
        count += 1
    return count, time.process_time() - cpu_started


@dataclass
class BcryptRate:
    per_second: float
    cpu_ms: float  # CPU milliseconds of one verification


def measure_bcrypt_rate(cost: int, processes: int = 2, seconds: float = 4.0) -> BcryptRate:
    """Verifications per second at `cost` with `processes` processes in parallel (like 2 workers)."""
    stored = bcrypt.hashpw(_prehash("UserPass123!"), bcrypt.gensalt(rounds=cost))
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(_verify_for, [(stored, 0.3)] * processes)
        started = time.perf_counter()
        results = pool.map(_verify_for, [(stored, seconds)] * processes)
        elapsed = time.perf_counter() - started
    count = sum(n for n, _ in results)
    return BcryptRate(count / elapsed, sum(cpu for _, cpu in results) * 1000 / count)


if __name__ == "__main__":
    rate = measure_bcrypt_rate(12)
    print(f"{rate.per_second:.2f} bcrypt verifications/s at cost 12 with 2 processes, {rate.cpu_ms:.0f} ms CPU each")
