"""Benchmark the auth backend: logins per second at the configured argon2id parameters, what a login
costs in auth CPU against one argon2id verification, and whether hashing blocks the event loop — the p99
of a cheap RPC (GetJwks) alone and during a login storm.

    .venv/bin/python -m bench.auth_login            # starts its own Kafka, Redis, users and auth backends

A login's cost: ``--rounds`` storms of ``--logins`` logins, the CPU of the auth (and users) backend's
process session from ``/proc`` before and after each, divided by its successful logins; after each storm
the CPU of one verification at the backend's parameters (``bench.argon2_cpu``, in a subprocess with the
backend's environment). Medians over the rounds, and their ratio.

Hashing runs in a bounded thread pool, so the cheap RPC should stay fast while logins queue for the pool;
if hashing ran on the event loop, every GetJwks would wait behind a 19 MiB argon2 computation.
Exits 1 when a scenario has errors in more than 1 % of its calls, 2 on a setup problem.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.ghz import ROOT, BenchError, GhzResult, run_ghz
from bench.sessions import session_cpu_seconds

if TYPE_CHECKING:
    from harness.auth import AuthStack

AUTH_PROTO = "proto/auth/v1/auth.proto"
PASSWORD = "bench-Login-storm-2026"  # noqa: S105 (the benchmark user's password)


@contextmanager
def own_stack(extra_env: dict[str, str] | None = None) -> Iterator[AuthStack]:
    """Kafka, Redis, users and auth backends for the run, the benchmark user registered."""
    from harness.auth import start_auth_stack, stop_auth_stack
    from harness.infra import start_infra

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="portico-bench-auth-") as tmp:
        base = Path(tmp)
        infra = start_infra(stack, base / "infra")
        (base / "logs").mkdir()
        # Logged as a deployment logs (the harness's default is DEBUG, for the tests that read it).
        auth = start_auth_stack(infra, base / "logs", {"PORTICO_LOG_LEVEL": "INFO", **(extra_env or {})})
        stack.callback(stop_auth_stack, auth)
        auth.register("bench", "benchuser", PASSWORD)
        yield auth


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


@dataclass(frozen=True)
class CostRound:
    """One storm's CPU per successful login, and one verification's CPU measured right after it."""

    storm: GhzResult
    auth_us: float
    users_us: float
    verify_us: float


def argon2_verify_us(env: dict[str, str], count: int) -> tuple[float, str]:
    """Median CPU-µs of one verification at the parameters the backend's environment configures."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.argon2_cpu", str(count)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"bench.argon2_cpu failed: {done.stderr[-2000:]}")
    median, memory, time_cost, parallelism = done.stdout.split()
    return float(median), f"memory {memory} KiB, time_cost {time_cost}, parallelism {parallelism}"


def cost_round(stack: AuthStack, logins: int, concurrency: int, verifies: int) -> tuple[CostRound, str]:
    pids = {name: stack.backends[name].proc.popen.pid for name in ("auth", "users")}
    before = {name: session_cpu_seconds(pid) for name, pid in pids.items()}
    storm = login_storm(stack.auth_target, logins, concurrency)
    used = {name: session_cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    ok = max(1, storm.status_codes.get("OK", 0))
    verify_us, params = argon2_verify_us(stack.env, verifies)
    per_login = {name: used[name] * 1e6 / ok for name in pids}
    return CostRound(storm, per_login["auth"], per_login["users"], verify_us), params


def print_costs(rounds: list[CostRound], params: str) -> None:
    print(f"argon2id ({params}); one verification measured in a subprocess after each storm")
    print(
        f"{'round':<8} {'logins':>7} {'logins/s':>9} {'auth CPU-µs/login':>18} {'users CPU-µs/login':>19} "
        f"{'argon2id verify CPU-µs':>23} {'ratio':>6}"
    )
    for i, r in enumerate(rounds, 1):
        print(
            f"{i:<8} {r.storm.count:>7} {r.storm.rps:>9.1f} {r.auth_us:>18.0f} {r.users_us:>19.0f} "
            f"{r.verify_us:>23.0f} {r.auth_us / r.verify_us:>5.2f}x"
        )
    auth = statistics.median(r.auth_us for r in rounds)
    verify = statistics.median(r.verify_us for r in rounds)
    users = statistics.median(r.users_us for r in rounds)
    print(
        f"{'median':<8} {'':>7} {statistics.median(r.storm.rps for r in rounds):>9.1f} {auth:>18.0f} "
        f"{users:>19.0f} {verify:>23.0f} {auth / verify:>5.2f}x"
    )
    print(f"auth CPU per login / one argon2id verification: {auth / verify:.2f}x (goal <= 1.2x)")


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--logins", type=int, default=300, help="login calls in each storm")
    parser.add_argument("--login-concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="storms whose CPU per login is measured")
    parser.add_argument("--verifies", type=int, default=20, help="argon2id verifications timed per round")
    parser.add_argument("--cheap", type=int, default=3000, help="GetJwks calls per cheap scenario")
    parser.add_argument("--cheap-concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        with own_stack() as stack:
            target = stack.auth_target
            # For a profiler: py-spy record -p <pid> during a storm.
            print(f"auth backend pid {stack.backends['auth'].proc.popen.pid}", file=sys.stderr, flush=True)
            rows: list[tuple[str, GhzResult]] = [
                ("getjwks alone", jwks(target, args.cheap, args.cheap_concurrency))
            ]
            # Warm: connections to the users backend and Redis, its cache of the user, SQLite's pages.
            login_storm(target, args.login_concurrency * 2, args.login_concurrency)
            costs: list[CostRound] = []
            params = ""
            for _ in range(args.rounds):
                cost, params = cost_round(stack, args.logins, args.login_concurrency, args.verifies)
                costs.append(cost)
            rows.extend((f"login storm alone ({i})", c.storm) for i, c in enumerate(costs, 1))
            storm: dict[str, GhzResult] = {}
            runner = threading.Thread(
                target=lambda: storm.setdefault(
                    "r", login_storm(target, args.logins * 2, args.login_concurrency)
                )
            )
            runner.start()
            time.sleep(1.0)  # the storm is in full swing before the cheap calls start
            during = jwks(target, args.cheap, args.cheap_concurrency)
            runner.join()
            rows.append(("getjwks during storm", during))
            rows.append(("login storm (with getjwks)", storm["r"]))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print(f"hashing threads = CPU count; login concurrency {args.login_concurrency}")
    print(f"{'scenario':<28} {'requests':>8} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in rows:
        print(f"{name:<28} {r.count:>8} {r.rps:>8.1f} {fmt(r.p50_ms):>8} {fmt(r.p99_ms):>8} {r.errors:>7}")
    alone = rows[0][1]
    if alone.p99_ms and during.p99_ms:
        print(f"getjwks p99 during storm / alone: {during.p99_ms / alone.p99_ms:.1f}x")
    print()
    if costs:
        print_costs(costs, params)
    failed = [name for name, r in rows if r.error_rate > 0.01]
    if failed:
        print(f"more than 1% errors in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
