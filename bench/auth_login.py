"""Benchmark the auth backend: logins per second at the configured argon2id parameters, and whether
hashing blocks the event loop — the p99 of a cheap RPC (GetJwks) alone and during a login storm.

    .venv/bin/python -m bench.auth_login            # starts its own Kafka, Redis, users and auth backends

Hashing runs in a bounded thread pool, so the cheap RPC should stay fast while logins queue for the pool;
if hashing ran on the event loop, every GetJwks would wait behind a 19 MiB argon2 computation.
Exits 1 when a scenario has errors in more than 1 % of its calls, 2 on a setup problem.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.ghz import BenchError, GhzResult, run_ghz

AUTH_PROTO = "proto/auth/v1/auth.proto"
PASSWORD = "bench-Login-storm-2026"  # noqa: S105 (the benchmark user's password)


@contextmanager
def own_stack() -> Iterator[str]:
    """Kafka, Redis, users and auth backends for the run; yields the auth target."""
    from harness.auth import start_auth_stack, stop_auth_stack
    from harness.infra import start_infra

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="portico-bench-auth-") as tmp:
        base = Path(tmp)
        infra = start_infra(stack, base / "infra")
        (base / "logs").mkdir()
        auth = start_auth_stack(infra, base / "logs")
        stack.callback(stop_auth_stack, auth)
        auth.register("bench", "benchuser", PASSWORD)
        yield auth.auth_target


def login_storm(target: str, requests: int, concurrency: int) -> GhzResult:
    return run_ghz(
        target=target,
        call="auth.v1.AuthService/Login",
        metadata={},
        data={"tenant_id": "bench", "username": "benchuser", "password": PASSWORD},
        requests=requests,
        concurrency=concurrency,
        timeout="30s",
        proto=AUTH_PROTO,
    )


def jwks(target: str, requests: int, concurrency: int) -> GhzResult:
    return run_ghz(
        target=target,
        call="auth.v1.AuthService/GetJwks",
        metadata={},
        data={},
        requests=requests,
        concurrency=concurrency,
        proto=AUTH_PROTO,
    )


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--logins", type=int, default=300, help="login calls in the storm")
    parser.add_argument("--login-concurrency", type=int, default=8)
    parser.add_argument("--cheap", type=int, default=3000, help="GetJwks calls per cheap scenario")
    parser.add_argument("--cheap-concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        with own_stack() as target:
            rows: list[tuple[str, GhzResult]] = [
                ("getjwks alone", jwks(target, args.cheap, args.cheap_concurrency))
            ]
            rows.append(("login storm alone", login_storm(target, args.logins, args.login_concurrency)))
            storm: dict[str, GhzResult] = {}
            runner = threading.Thread(
                target=lambda: storm.setdefault(
                    "r", login_storm(target, args.logins * 2, args.login_concurrency)
                )
            )
            runner.start()
            time.sleep(1.0)  # the storm is in full swing before the cheap calls start
            rows.append(("getjwks during storm", jwks(target, args.cheap, args.cheap_concurrency)))
            runner.join()
            rows.append(("login storm (with getjwks)", storm["r"]))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print("argon2id: memory 19456 KiB, time_cost 2, parallelism 1 (OWASP); hashing threads = CPU count")
    print(f"{'scenario':<28} {'requests':>8} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in rows:
        print(f"{name:<28} {r.count:>8} {r.rps:>8.1f} {fmt(r.p50_ms):>8} {fmt(r.p99_ms):>8} {r.errors:>7}")
    alone, during = rows[0][1], rows[2][1]
    if alone.p99_ms and during.p99_ms:
        print(f"getjwks p99 during storm / alone: {during.p99_ms / alone.p99_ms:.1f}x")
    failed = [name for name, r in rows if r.error_rate > 0.01]
    if failed:
        print(f"more than 1% errors in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
