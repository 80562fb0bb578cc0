"""Benchmark the gateway: ``GET /api/v1/users/{id}`` through it (wrk) against ``GetUser`` direct over gRPC
(ghz), under uvicorn (uvloop + httptools, what ``python -m gateway`` runs) and under granian.

    .venv/bin/python -m bench.gateway_users          # starts Kafka, Redis, PostgreSQL, 4 backends itself

One user reads themself with one token on every call; the users cache and the gateway's verified-token
cache are warm before any measurement. JWT edge validation and the Redis rate limit are on (limits set
high enough never to refuse: every gateway answer must be a 200, or the run fails). Two loads: ``load``
(``--connections`` concurrent requests) and ``c=1`` (one at a time, to see the latency the gateway adds).
Columns: rps, p50, p99, and CPU-µs per request of the gateway's processes and of the users backend,
from /proc utime+stime before and after each run. Prints a table and the goals (gateway rps >= 0.7 x
direct, <= 0.3 ms p50 added at c=1), a server recommendation, and saves a PNG plot.
Exit status: 0; 1 when a goal is missed with ``--strict``; 2 on a setup problem or a non-200 answer.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.ghz import GHZ, BenchError, GhzResult, run_ghz
from bench.plot import save_bars
from bench.wrk import run_wrk
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
CALL = "users.v1.UserService/GetUser"
ROUTE = "/api/v1/users/{user_id}"  # the route template the gateway labels its metrics with
PASSWORD = "bench-Gateway-reads-2026"  # noqa: S105 (the benchmark user's password)
RPS_GOAL = 0.7  # gateway rps >= this x direct gRPC rps, at load
ADDED_P50_GOAL_MS = 0.3  # gateway p50 - direct p50 at c=1
# Never refuse during the run (the limiter is still consulted in Redis on every request).
LIMITS = {
    "PORTICO_RATE_LIMIT_PER_IP": "100000000/minute",
    "PORTICO_RATE_LIMIT_PER_USER": "100000000/hour",
    "PORTICO_ACCESS_TOKEN_TTL": "3600",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def granian_app() -> object:
    """The gateway app for ``granian --factory``, set up as ``python -m gateway`` sets it up for uvicorn
    (telemetry and logging), so both servers run the same application."""
    import logging

    from gateway.app import create_app
    from gateway.config import GatewaySettings
    from observability.telemetry import setup_telemetry

    setup_telemetry("portico-gateway")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    return create_app(GatewaySettings())


SERVERS: dict[str, list[str]] = {
    "uvicorn": ["-m", "gateway"],
    "granian": [
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--loop",
        "uvloop",
        "--http",
        "1",
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
        "--factory",
        "bench.gateway_users:granian_app",
    ],
}


# --- CPU accounting ------------------------------------------------------------------------------------


def session_cpu_seconds(leader: int) -> float:
    """utime + stime of every process in ``leader``'s session (the server and any worker it spawned;
    all threads included), in seconds. Processes are started with ``start_new_session``."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = raw[raw.rindex(")") + 2 :].split()  # fields from 3 (state) on; comm may hold spaces
        if int(fields[3]) == leader:  # field 6: session id
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime (clock ticks)
    return total / CLK_TCK


@dataclass(frozen=True)
class Row:
    name: str
    load: str
    requests: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    gateway_cpu_us: float | None  # per request
    backend_cpu_us: float  # users backend, per request


@contextmanager
def cpu_meter(pids: dict[str, int]) -> Iterator[dict[str, float]]:
    """CPU seconds used by each process session during the block."""
    before = {name: session_cpu_seconds(pid) for name, pid in pids.items()}
    used: dict[str, float] = {}
    yield used
    used.update({name: session_cpu_seconds(pid) - before[name] for name, pid in pids.items()})


# --- the gateway's own count of answers ----------------------------------------------------------------


def route_answers(gateway_url: str) -> dict[str, float]:
    """``portico_gateway_requests_total`` of GET ``ROUTE`` by status."""
    text = httpx.get(f"{gateway_url}/metrics", timeout=5).text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "portico_gateway_requests":
            continue
        for sample in family.samples:
            labels = sample.labels
            if sample.name.endswith("_total") and labels.get("route") == ROUTE and labels["method"] == "GET":
                counts[labels["status"]] = counts.get(labels["status"], 0.0) + sample.value
    return counts


def check_all_200(
    before: dict[str, float], after: dict[str, float], sent: int, in_flight: int, what: str
) -> int:
    """Fail loudly unless the gateway answered at least ``sent`` 200s and nothing else on the route, but
    for up to ``in_flight`` requests wrk abandons when it stops: the gateway counts each as a 500 (a client
    disconnect, no answer sent). Returns how many were abandoned that way."""
    delta = {status: after.get(status, 0.0) - before.get(status, 0.0) for status in after}
    others = {status: int(n) for status, n in delta.items() if status != "200" and n}
    abandoned = others.pop("500", 0) if others.get("500", 0) <= in_flight else 0
    if others or delta.get("200", 0.0) < sent:
        raise BenchError(
            f"{what}: the gateway answered {int(delta.get('200', 0))} x 200 for {sent} requests, "
            f"and {others or 'nothing else'}: the measurement is not of successful reads"
        )
    return abandoned


# --- the mesh --------------------------------------------------------------------------------------------


@dataclass
class Stack:
    env: dict[str, str]
    users_target: str
    users_pid: int
    gateway_port: int
    log_dir: Path
    user_id: str
    token: str


@contextmanager
def own_stack() -> Iterator[Stack]:
    """Kafka, Redis, PostgreSQL and the four backends on free ports (the tests' mesh, its gateway stopped:
    each server below starts its own); a registered user and their token."""
    from contextlib import ExitStack

    from tests.support.infra import start_infra
    from tests.support.mesh import start_mesh

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="portico-bench-gw-") as tmp:
        base = Path(tmp)
        log(
            "starting Kafka, Redis and PostgreSQL (or using PORTICO_KAFKA_BOOTSTRAP/_REDIS_URL/_DATABASE_URL)"
        )
        infra = start_infra(stack, base / "infra")
        (base / "logs").mkdir()
        log("starting the four backends")
        mesh = start_mesh({**infra.env(), **LIMITS}, base / "logs")
        stack.callback(mesh.stop)
        mesh.procs.pop("gateway").terminate()
        with grpc.insecure_channel(mesh.target("auth")) as channel:
            reply = auth_pb2_grpc.AuthServiceStub(channel).Register(
                auth_pb2.RegisterRequest(
                    tenant_id=f"bench-{uuid.uuid4().hex[:8]}",
                    username="benchreader",
                    email="benchreader@bench.example.com",
                    password=PASSWORD,
                ),
                timeout=30,
            )
        yield Stack(
            env=mesh.env,
            users_target=mesh.target("users"),
            users_pid=mesh.procs["users"].popen.pid,
            gateway_port=int(mesh.env["PORTICO_GATEWAY_PORT"]),
            log_dir=base / "logs",
            user_id=reply.user.id,
            token=reply.access_token,
        )


@contextmanager
def gateway(stack: Stack, server: str) -> Iterator[tuple[str, int]]:
    """The gateway under ``server`` on the stack's gateway port, until /ready; yields (URL, pid)."""
    from tests.support.mesh import gateway_ready
    from tests.support.processes import spawn, wait_until

    args = SERVERS[server]
    if server == "granian":
        args = [*args, "--host", "127.0.0.1", "--port", str(stack.gateway_port)]
    proc = spawn(f"gateway-{server}", args, stack.env, stack.log_dir)
    url = f"http://127.0.0.1:{stack.gateway_port}"
    try:
        wait_until(lambda: proc.popen.poll() is None and gateway_ready(url), 60, f"gateway ({server}) /ready")
        yield url, proc.popen.pid
    except TimeoutError as exc:
        raise BenchError(f"{exc}; its log ends:\n{proc.log()[-3000:]}") from exc
    finally:
        proc.terminate()


# --- the runs -------------------------------------------------------------------------------------------


def per_request_us(seconds: float, requests: int) -> float:
    return seconds / requests * 1e6 if requests else 0.0


def direct_row(stack: Stack, load: str, concurrency: int, seconds: float, ghz_path: Path) -> Row:
    """GetUser over gRPC with ghz for about ``seconds``: the call count comes from a short warm-up."""

    def ghz(requests: int) -> GhzResult:
        return run_ghz(
            target=stack.users_target,
            call=CALL,
            metadata={"authorization": f"Bearer {stack.token}"},
            data={"user_id": stack.user_id},
            requests=requests,
            concurrency=concurrency,
            max_seconds=seconds * 4 + 60,
            ghz=ghz_path,
        )

    warm = ghz(max(200, 100 * concurrency))
    if warm.errors:
        raise BenchError(f"direct warm-up: {warm.status_codes} {next(iter(warm.error_messages), '')}")
    requests = max(200, int(warm.rps * seconds))
    log(f"direct gRPC, {load}: {requests} calls at concurrency {concurrency}")
    with cpu_meter({"users": stack.users_pid}) as used:
        result = ghz(requests)
    if result.errors:
        raise BenchError(f"direct {load}: {result.status_codes} {next(iter(result.error_messages), '')}")
    return Row(
        "grpc direct (ghz)",
        load,
        result.count,
        result.rps,
        result.p50_ms,
        result.p99_ms,
        None,
        per_request_us(used["users"], result.count),
    )


def gateway_row(
    stack: Stack, server: str, url: str, pid: int, load: str, connections: int, seconds: float
) -> Row:
    target = f"{url}/api/v1/users/{stack.user_id}"
    log(f"gateway ({server}), {load}: {seconds:g}s at {connections} connection(s)")
    before = route_answers(url)
    with cpu_meter({"gateway": pid, "users": stack.users_pid}) as used:
        result = run_wrk(target, token=stack.token, connections=connections, seconds=seconds)
    what = f"gateway ({server}), {load}"
    abandoned = check_all_200(before, route_answers(url), result.requests, connections, what)
    if abandoned:
        log(f"{what}: {abandoned} request(s) cut off by wrk's stop, counted 500 (client disconnect)")
    if result.non_2xx or result.socket_errors:
        raise BenchError(
            f"gateway ({server}), {load}: wrk saw {result.non_2xx} non-2xx answers and "
            f"{result.socket_errors} socket errors"
        )
    return Row(
        f"gateway {server} (wrk)",
        load,
        result.requests,
        result.rps,
        result.p50_ms,
        result.p99_ms,
        per_request_us(used["gateway"], result.requests),
        per_request_us(used["users"], result.requests),
    )


def warm_gateway(stack: Stack, url: str, connections: int) -> None:
    """Fill the verified-token cache, open the upstream channel, let the interpreter settle."""
    before = route_answers(url)
    warm = run_wrk(
        f"{url}/api/v1/users/{stack.user_id}", token=stack.token, connections=connections, seconds=2
    )
    check_all_200(before, route_answers(url), warm.requests, connections, "gateway warm-up")


# --- output ---------------------------------------------------------------------------------------------


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def table(rows: list[Row]) -> str:
    header = (
        f"{'row':<24}{'load':<7}{'requests':>9}{'rps':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'gw CPU-µs/req':>15}{'users CPU-µs/req':>18}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.name:<24}{r.load:<7}{r.requests:>9}{r.rps:>9.0f}{fmt(r.p50_ms):>9}{fmt(r.p99_ms):>9}"
            f"{fmt(r.gateway_cpu_us, '.0f'):>15}{r.backend_cpu_us:>18.0f}"
        )
    return "\n".join(lines)


def find(rows: list[Row], name: str, load: str) -> Row:
    return next(r for r in rows if r.name == name and r.load == load)


def goals(rows: list[Row], servers: list[str]) -> tuple[list[str], bool]:
    """One line per server and goal, and whether every goal was met by at least the recommended one."""
    direct_load, direct_c1 = find(rows, "grpc direct (ghz)", "load"), find(rows, "grpc direct (ghz)", "c=1")
    lines, met_by = [], set()
    for server in servers:
        load, c1 = find(rows, f"gateway {server} (wrk)", "load"), find(rows, f"gateway {server} (wrk)", "c=1")
        ratio = load.rps / direct_load.rps if direct_load.rps else 0.0
        added = (c1.p50_ms or 0.0) - (direct_c1.p50_ms or 0.0)
        ok_rps, ok_p50 = ratio >= RPS_GOAL, added <= ADDED_P50_GOAL_MS
        lines.append(
            f"{server}: rps {ratio:.2f} x direct (goal >= {RPS_GOAL}) {'met' if ok_rps else 'NOT met'}; "
            f"added p50 at c=1 {added:.3f} ms (goal <= {ADDED_P50_GOAL_MS}) {'met' if ok_p50 else 'NOT met'}"
        )
        if ok_rps and ok_p50:
            met_by.add(server)
    return lines, bool(met_by)


def recommend(rows: list[Row], servers: list[str]) -> str:
    """The server that wins more of rps, p50, p99 and gateway CPU-µs/req at load (a tie: less CPU)."""
    if len(servers) < 2:
        return ""
    load = {s: find(rows, f"gateway {s} (wrk)", "load") for s in servers}
    a, b = servers[0], servers[1]
    measures = {
        "rps": (load[a].rps, load[b].rps, True),
        "p50": (load[a].p50_ms or 0.0, load[b].p50_ms or 0.0, False),
        "p99": (load[a].p99_ms or 0.0, load[b].p99_ms or 0.0, False),
        "CPU-µs/req": (load[a].gateway_cpu_us or 0.0, load[b].gateway_cpu_us or 0.0, False),
    }
    wins = {a: 0, b: 0}
    for x, y, higher_is_better in measures.values():
        if x != y:
            wins[a if (x > y) == higher_is_better else b] += 1
    cpu_a, cpu_b = measures["CPU-µs/req"][0], measures["CPU-µs/req"][1]
    best = max(servers, key=lambda s: (wins[s], -(cpu_a if s == a else cpu_b)))
    detail = ", ".join(f"{name} {x:.4g} vs {y:.4g}" for name, (x, y, _) in measures.items())
    return f"server: {best} wins {wins[best]} of 4 at load ({a} vs {b}: {detail})"


def plot(rows: list[Row], path: Path, note: str) -> Path:
    labels = [f"{r.name.replace(' (wrk)', '').replace(' (ghz)', '')}\n{r.load}" for r in rows]
    return save_bars(
        path,
        "GET /api/v1/users/{id} via the gateway vs GetUser direct over gRPC",
        labels,
        {
            "requests/s": {"rps": [r.rps for r in rows]},
            "latency ms": {"p50": [r.p50_ms for r in rows], "p99": [r.p99_ms for r in rows]},
            "CPU-µs/request": {
                "gateway": [r.gateway_cpu_us for r in rows],
                "users backend": [r.backend_cpu_us for r in rows],
            },
        },
        note,
    )


# --- main -----------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway_users",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured run")
    parser.add_argument("--connections", type=int, default=16, help="concurrent requests of the load rows")
    parser.add_argument("--servers", default="uvicorn,granian", help="comma-separated: uvicorn, granian")
    parser.add_argument("--plot", type=Path, default=ROOT / "bench" / "results" / "gateway_users.png")
    parser.add_argument("--strict", action="store_true", help="exit 1 when no server meets both goals")
    parser.add_argument("--ghz", type=Path, default=GHZ)
    args = parser.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not args.servers or set(args.servers) - set(SERVERS):
        parser.error(f"--servers: choose from {', '.join(SERVERS)}")
    if args.seconds < 1 or args.connections < 1:
        parser.error("--seconds must be >= 1 and --connections >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, load_before = time.monotonic(), os.getloadavg()[0]
    machine = f"{os.cpu_count()} cores, {os.uname().machine}, Python {sys.version.split()[0]}"
    try:
        with own_stack() as stack:
            rows = [
                direct_row(stack, "load", args.connections, args.seconds, args.ghz),
                direct_row(stack, "c=1", 1, args.seconds, args.ghz),
            ]
            for server in args.servers:
                log(f"starting the gateway under {server}")
                with gateway(stack, server) as (url, pid):
                    warm_gateway(stack, url, args.connections)
                    rows.append(gateway_row(stack, server, url, pid, "load", args.connections, args.seconds))
                    rows.append(gateway_row(stack, server, url, pid, "c=1", 1, args.seconds))
    except (BenchError, grpc.RpcError, httpx.HTTPError) as exc:
        detail = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        print(f"bench: {detail}", file=sys.stderr)
        return 2

    load_avg = f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    note = f"one run on {machine} ({load_avg}); load generator, gateway, backends and Redis share the cores"
    print(f"machine: {machine}; {load_avg}. One run, load generator and servers sharing the cores: noisy.")
    print(
        f"load = {args.connections} concurrent requests (wrk: connections; ghz: streams on 1 connection), "
        f"{args.seconds:g}s each"
    )
    print(table(rows))
    goal_lines, met = goals(rows, args.servers)
    print("goals:")
    for line in goal_lines:
        print(f"  {line}")
    recommendation = recommend(rows, args.servers)
    if recommendation:
        print(recommendation)
    print(f"plot: {plot(rows, args.plot, note)}")
    log(f"done in {time.monotonic() - started:.0f}s")
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
