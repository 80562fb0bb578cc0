"""CPU time of one argon2id verification at the auth backend's configured parameters.

    .venv/bin/python -m bench.argon2_cpu 20     # prints one line: the median CPU-µs, then m, t, p

Run by ``bench.auth_login`` as a subprocess with the auth backend's environment, so the parameters are
the ones ``AuthSettings`` gives the backend; ``time.process_time`` counts this process's CPU only, so
other load on the machine does not inflate it (beyond cache and frequency effects).
"""

from __future__ import annotations

import statistics
import sys
import time

from argon2 import PasswordHasher, Type

from backends.auth.config import AuthSettings

PASSWORD = b"bench-Login-storm-2026"


def verify_cpu_us(count: int) -> tuple[float, AuthSettings]:
    """The median CPU-µs of ``count`` successful verifications, and the settings they used."""
    settings = AuthSettings()
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        type=Type.ID,
    )
    stored = hasher.hash(PASSWORD)
    hasher.verify(stored, PASSWORD)  # warm: the first allocation of the memory block costs more
    samples = []
    for _ in range(count):
        start = time.process_time()
        hasher.verify(stored, PASSWORD)
        samples.append((time.process_time() - start) * 1e6)
    return statistics.median(samples), settings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    median, s = verify_cpu_us(int(args[0]) if args else 20)
    print(f"{median:.0f} {s.argon2_memory_kib} {s.argon2_time_cost} {s.argon2_parallelism}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
