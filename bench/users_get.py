"""Benchmark ``users.v1.UserService/GetUser`` with ghz: cache hit versus cache miss.

    .venv/bin/python -m bench.users_get                       # starts its own users backend
    .venv/bin/python -m bench.users_get --target 127.0.0.1:50051 --token "$ADMIN_TOKEN" --user-id "$ID"

Scenarios, each ``--requests`` calls at ``--concurrency`` (and stopped after ``--max-seconds``):

- ``cache-hit``: the same user id on every call, after a warm-up run that puts it in the cache;
- ``cache-miss``: a pool of ``--requests`` distinct users, created before the runs and never read, sent
  round-robin by ghz (one id per call, none twice). The users cache is read-through, so every call is the
  first read of its user: a Redis miss, a database load and a cache fill. Redis is not flushed: that
  would also drop token revocations and anything else sharing the Redis.

Prints scenario, requests, rps, p50, p99, errors, the users-cache misses per call when the backend's
/metrics is known (about 0 and 1 when the scenarios are what they say) and the backend's CPU-µs per call
when its process is known (its own, or ``--pid``: utime + stime of its session from ``/proc``, before and
after the scenario), then the hit/miss ratios of rps and p50. Exits 1 when a scenario has errors in more
than ``--max-error-rate`` of its calls (1 % by default), 2 on a setup problem.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.ghz import GHZ, BenchError, GhzResult, require_loopback, run_ghz
from bench.sessions import session_cpu_seconds
from stubs.users.v1 import users_pb2, users_pb2_grpc

CALL = "users.v1.UserService/GetUser"
CACHE_METRIC = "portico_cache_requests"  # counter portico_cache_requests_total{cache="users",result=…}


@dataclass(frozen=True)
class Setup:
    """Where and as whom to call, and what to read."""

    target: str
    token: str
    hit_user_id: str
    miss_user_ids: list[str]
    metrics_url: str | None
    pid: int | None  # the backend's process (leader of its session), for its CPU time


@dataclass(frozen=True)
class Scenario:
    name: str
    result: GhzResult
    misses_per_call: float | None  # users-cache misses per call, from the backend's metrics when known
    cpu_us_per_call: float | None  # the backend's CPU-µs per call, from /proc when its pid is known


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def create_users(target: str, token: str, count: int, prefix: str, window: int = 64) -> list[str]:
    """``count`` new users via CreateUser (in the token's tenant), ``window`` calls in flight."""
    ids: list[str] = []
    with grpc.insecure_channel(target) as channel:
        stub = users_pb2_grpc.UserServiceStub(channel)
        for start in range(0, count, window):
            calls = [
                stub.CreateUser.future(
                    users_pb2.CreateUserRequest(
                        username=f"{prefix}-{i}", email=f"{prefix}-{i}@bench.example.com"
                    ),
                    metadata=metadata(token),
                    timeout=30,
                )
                for i in range(start, min(start + window, count))
            ]
            ids.extend(call.result().user.id for call in calls)
    return ids


def cache_counts(metrics_url: str | None) -> dict[str, float] | None:
    """The users cache's lookups by result (hit, miss, bypass) so far, or None when unknown."""
    if metrics_url is None:
        return None
    try:
        text = httpx.get(metrics_url, timeout=5).text
    except httpx.HTTPError as exc:
        log(f"cannot read {metrics_url}: {exc}")
        return None
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != CACHE_METRIC:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("cache") == "users":
                counts[sample.labels.get("result", "")] = sample.value
    return counts


def misses_per_call(
    before: dict[str, float] | None, after: dict[str, float] | None, calls: int
) -> float | None:
    """Cache lookups that went to the database (miss, or bypass when Redis failed) per call.

    Not a hit ratio: GetUser also looks up the caller (to refuse deleted users), and concurrent lookups
    of one key share a load without being counted, so the number of lookups per call varies. The
    caller is read in every call, so it only ever misses once; the user asked for misses on its first
    read. Expect about 0 for cache-hit and 1 for cache-miss.
    """
    if before is None or after is None or not calls:
        return None
    missed = sum(after.get(k, 0.0) - before.get(k, 0.0) for k in ("miss", "bypass"))
    return missed / calls


def run_scenario(
    name: str, setup: Setup, data: dict[str, str] | list[dict[str, str]], args: argparse.Namespace
) -> Scenario:
    log(f"{name}: {args.requests} calls, concurrency {args.concurrency}")
    before = cache_counts(setup.metrics_url)
    cpu_before = session_cpu_seconds(setup.pid) if setup.pid else None
    result = run_ghz(
        target=setup.target,
        call=CALL,
        metadata={"authorization": f"Bearer {setup.token}"},
        data=data,
        requests=args.requests,
        concurrency=args.concurrency,
        connections=args.connections,
        max_seconds=args.max_seconds,
        ghz=args.ghz,
    )
    cpu_us = None
    if cpu_before is not None and setup.pid and result.count:
        cpu_us = (session_cpu_seconds(setup.pid) - cpu_before) * 1e6 / result.count
    misses = misses_per_call(before, cache_counts(setup.metrics_url), result.count)
    scenario = Scenario(name, result, misses, cpu_us)
    if args.report_dir:
        args.report_dir.mkdir(parents=True, exist_ok=True)
        (args.report_dir / f"{name}.json").write_text(json.dumps(result.redacted_report(), indent=2))
    return scenario


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(scenarios: list[Scenario]) -> str:
    columns = (("scenario", 12), ("requests", 10), ("rps", 10), ("p50 ms", 9), ("p99 ms", 9))
    header = "".join(f"{n:<{w}}" if n == "scenario" else f"{n:>{w}}" for n, w in columns)
    header += f"{'errors':>16}{'misses/call':>13}{'users CPU-µs/call':>19}"
    lines = [header, "-" * len(header)]
    for s in scenarios:
        r = s.result
        misses = "n/a" if s.misses_per_call is None else f"{s.misses_per_call:.2f}"
        cpu = "n/a" if s.cpu_us_per_call is None else f"{s.cpu_us_per_call:.0f}"
        errors = f"{r.errors} ({r.error_rate:.2%})"
        lines.append(
            f"{s.name:<12}{r.count:>10}{r.rps:>10.1f}{fmt_ms(r.p50_ms):>9}{fmt_ms(r.p99_ms):>9}"
            f"{errors:>16}{misses:>13}{cpu:>19}"
        )
    by_name = {s.name: s.result for s in scenarios}
    hit, miss = by_name.get("cache-hit"), by_name.get("cache-miss")
    if hit and miss:
        rps = f"{hit.rps / miss.rps:.2f}x" if miss.rps else "-"
        p50 = f"{hit.p50_ms / miss.p50_ms:.2f}x" if hit.p50_ms and miss.p50_ms else "-"
        lines.append(f"hit/miss ratio: rps {rps}, p50 {p50}")
    for s in scenarios:
        codes = {code: n for code, n in s.result.status_codes.items() if code != "OK"}
        if codes:
            example = max(s.result.error_messages.items(), key=lambda kv: kv[1], default=("", 0))[0]
            counted = ", ".join(f"{code} x{n}" for code, n in sorted(codes.items(), key=lambda kv: -kv[1]))
            lines.append(f"  {s.name} errors: {counted}; e.g. {example}")
        if s.result.end_reason not in ("", "normal"):
            lines.append(f"  {s.name}: ghz ended early ({s.result.end_reason})")
    return "\n".join(lines)


@contextmanager
def own_backend(args: argparse.Namespace) -> Iterator[tuple[str, Callable[[str], str], str, str, int]]:
    """Start Kafka/Redis/PostgreSQL (or use PORTICO_*), a token issuer and a users backend, like the
    tests do. Yields (target, token-for-user-id, admin token, metrics URL, backend pid); all stopped on
    exit."""
    from harness.infra import start_infra
    from harness.tokens import TokenIssuer
    from harness.users import start_users_backend

    with ExitStack() as stack:
        base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="portico-bench-")))
        log(
            "starting Kafka, Redis and PostgreSQL (or using PORTICO_KAFKA_BOOTSTRAP/_REDIS_URL/_DATABASE_URL)"
        )
        infra = start_infra(stack, base / "infra")
        issuer = TokenIssuer().start()
        stack.callback(issuer.stop)
        (base / "logs").mkdir()
        database_url = infra.database_url if args.db == "postgres" else None
        log(f"starting a users backend ({args.db})")
        backend = start_users_backend(infra, issuer, base / "logs", database_url=database_url)
        stack.callback(backend.proc.terminate)
        tenant = f"bench-{uuid.uuid4().hex[:8]}"
        _, admin_token = backend.admin(tenant)

        def user_token(user_id: str) -> str:
            return backend.token({"id": user_id, "tenant_id": tenant, "email": "", "roles": ["user"]})

        metrics_url = f"http://127.0.0.1:{backend.metrics_port}/metrics"
        yield backend.target, user_token, admin_token, metrics_url, backend.proc.popen.pid


def prepare(args: argparse.Namespace, stack: ExitStack) -> Setup:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    if args.target:
        require_loopback(args.target)
        if not args.token:
            raise BenchError("--token (or PORTICO_TOKEN) is needed with --target")
        hit_id = args.user_id or create_users(args.target, args.token, 1, f"{prefix}-hit")[0]
        if args.pool_file:
            pool = [line.strip() for line in args.pool_file.read_text().splitlines() if line.strip()]
        else:
            log(f"creating {args.requests} users for the miss pool (needs an admin --token)")
            pool = create_users(args.target, args.token, args.requests, prefix)
        return Setup(args.target, args.token, hit_id, pool, args.metrics_url, args.pid)

    target, user_token, admin_token, metrics_url, pid = stack.enter_context(own_backend(args))
    hit_id = create_users(target, admin_token, 1, f"{prefix}-hit")[0]
    started = time.monotonic()
    log(f"creating {args.requests} users for the miss pool")
    pool = create_users(target, admin_token, args.requests, prefix)
    log(f"created in {time.monotonic() - started:.1f}s")
    # Read as an ordinary user of the tenant (the hit user themself), like most production reads.
    return Setup(target, user_token(hit_id), hit_id, pool, args.metrics_url or metrics_url, pid)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.users_get",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env = os.environ.get
    parser.add_argument("--target", default=env("PORTICO_USERS_TARGET", ""), help="a running users backend")
    parser.add_argument(
        "--token", default=env("PORTICO_TOKEN", ""), help="access token (admin to create users)"
    )
    parser.add_argument("--user-id", default=env("PORTICO_USER_ID", ""), help="user of the hit scenario")
    parser.add_argument("--pool-file", type=Path, help="ids for the miss scenario, one a line (else created)")
    parser.add_argument("--metrics-url", default=None, help="the backend's /metrics, to report cache hits")
    parser.add_argument("--pid", type=int, help="the --target backend's pid, to report its CPU per call")
    parser.add_argument(
        "--db", choices=("sqlite", "postgres"), default="sqlite", help="own backend's database"
    )
    parser.add_argument("--requests", type=int, default=2000, help="calls per scenario (default 2000)")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=200, help="calls of the hit user before measuring")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="ghz is stopped after this long")
    parser.add_argument("--max-error-rate", type=float, default=0.01)
    parser.add_argument("--report-dir", type=Path, help="keep ghz's JSON reports (token removed) here")
    parser.add_argument("--ghz", type=Path, default=GHZ)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--requests and --concurrency must be positive, --warmup not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with ExitStack() as stack:
            setup = prepare(args, stack)
            if len(setup.miss_user_ids) < args.requests:
                raise BenchError(
                    f"the miss pool has {len(setup.miss_user_ids)} ids for {args.requests} calls: ids would "
                    "repeat and hit the cache"
                )
            hit_data = {"user_id": setup.hit_user_id}
            if args.warmup:
                log(f"warm-up: {args.warmup} calls of the hit user")
                warm = run_ghz(
                    target=setup.target,
                    call=CALL,
                    metadata={"authorization": f"Bearer {setup.token}"},
                    data=hit_data,
                    requests=args.warmup,
                    concurrency=min(args.concurrency, args.warmup),
                    max_seconds=args.max_seconds,
                    ghz=args.ghz,
                )
                if warm.error_rate > args.max_error_rate:
                    log(f"warm-up failed: {warm.status_codes} {next(iter(warm.error_messages), '')}")
            scenarios = [
                run_scenario("cache-hit", setup, hit_data, args),
                run_scenario(
                    "cache-miss", setup, [{"user_id": i} for i in setup.miss_user_ids[: args.requests]], args
                ),
            ]
    except (BenchError, grpc.RpcError) as exc:
        detail = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        code = f"{exc.code().name}: " if isinstance(exc, grpc.Call) else ""
        print(f"bench: {code}{detail}", file=sys.stderr)
        return 2

    print(table(scenarios))
    failed = [s.name for s in scenarios if s.result.error_rate > args.max_error_rate]
    if failed:
        print(f"bench: more than {args.max_error_rate:.0%} errors in {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
