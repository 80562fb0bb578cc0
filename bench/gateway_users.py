"""Benchmark the gateway: ``GET /api/v1/users/{id}`` through it (wrk) against ``GetUser`` direct over gRPC
(ghz), under uvicorn (uvloop + httptools, what ``python -m gateway`` runs) and under granian.

    .venv/bin/python -m bench.gateway_users          # starts Kafka, Redis, PostgreSQL, 4 backends itself

One user reads themself with one token on every call; the users cache and the gateway's verified-token
cache are warm before any measurement. JWT edge validation and the Redis rate limit are on (limits set
high enough never to refuse: every gateway answer must be a 200, or the run fails). Two loads: ``load``
(``--connections`` concurrent requests) and ``c=1`` (one at a time, to see the latency the gateway adds).
Both gateways run side by side; each row gets ``--seconds`` in all, split over ``--rounds`` interleaved
rounds (order reversed every other round); latencies are merged (ghz: every call; wrk: 1000 quantiles
per run).
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
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from bench.ghz import GHZ, BenchError, GhzResult, run_ghz
from bench.plot import save_bars
from bench.wrk import WrkResult, run_wrk
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
CALL = "users.v1.UserService/GetUser"
ROUTE = "/api/v1/users/{user_id}"  # the route template the gateway labels its metrics with
PASSWORD = "bench-Gateway-reads-2026"  # noqa: S105 (the benchmark user's password)
RPS_GOAL = 0.7  # gateway rps >= this x direct gRPC rps, at load
ADDED_P50_GOAL_MS = 0.3  # gateway p50 - direct p50 at c=1
# Never refuse during the run (the limiter is still consulted in Redis on every request).
LIMITS = {
    "PORTICO_GATEWAY_RATE_LIMIT_PER_IP": "100000000/minute",
    "PORTICO_GATEWAY_RATE_LIMIT_PER_USER": "100000000/hour",
    "PORTICO_AUTH_ACCESS_TOKEN_TTL": "3600",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def granian_app() -> Starlette:
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
    log_dir: Path
    user_id: str
    token: str


@contextmanager
def own_stack() -> Iterator[Stack]:
    """Kafka, Redis, PostgreSQL and the four backends on free ports (the tests' mesh, its gateway stopped:
    each server below starts its own); a registered user and their token."""
    from harness.mesh import start_backends_on_infra

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="portico-bench-gw-") as tmp:
        base = Path(tmp)
        log(
            "starting Kafka, Redis, PostgreSQL (or using PORTICO_KAFKA_BOOTSTRAP/_REDIS_URL/_DATABASE_URL)"
            " and the four backends"
        )
        mesh = start_backends_on_infra(stack, base, LIMITS)
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
            log_dir=base / "logs",
            user_id=reply.user.id,
            token=reply.access_token,
        )


@contextmanager
def gateway(stack: Stack, server: str, port: int) -> Iterator[tuple[str, int]]:
    """The gateway under ``server`` on ``port``, until /ready; yields (URL, pid)."""
    from harness.gateway import gateway_ready
    from harness.processes import spawn, wait_until

    args = SERVERS[server]
    if server == "granian":
        args = [*args, "--host", "127.0.0.1", "--port", str(port)]
    env = {**stack.env, "PORTICO_GATEWAY_PORT": str(port)}
    proc = spawn(f"gateway-{server}", args, env, stack.log_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: proc.popen.poll() is None and gateway_ready(url), 60, f"gateway ({server}) /ready")
        yield url, proc.popen.pid
    except TimeoutError as exc:
        raise BenchError(f"{exc}; its log ends:\n{proc.log()[-3000:]}") from exc
    finally:
        proc.terminate()


# --- the runs -------------------------------------------------------------------------------------------


def percentile_ms(weights_us: Mapping[int, float], percent: float) -> float | None:
    """The smallest latency at or below which ``percent`` % of the (weighted) requests finished."""
    total = sum(weights_us.values())
    if not total:
        return None
    seen = 0.0
    for us in sorted(weights_us):
        seen += weights_us[us]
        if seen >= total * percent / 100 * (1 - 1e-9):
            return us / 1e3
    return max(weights_us) / 1e3


def wrk_weights_us(result: WrkResult) -> dict[int, float]:
    """wrk's evenly spaced quantiles, each standing for an equal share of the run's requests."""
    weights: dict[int, float] = {}
    for us in result.quantiles_us:
        weights[us] = weights.get(us, 0.0) + result.requests / len(result.quantiles_us)
    return weights


def ghz_weights_us(result: GhzResult) -> dict[int, float]:
    """Every successful call's latency, from ghz's per-call details."""
    weights: dict[int, float] = {}
    for call in result.report.get("details") or []:
        if call.get("status") == "OK":
            us = round(int(call["latency"]) / 1e3)
            weights[us] = weights.get(us, 0.0) + 1.0
    return weights


@dataclass
class Tally:
    """One row's measurements summed over the rounds: latencies merged exactly, CPU and time added up."""

    requests: int = 0
    seconds: float = 0.0
    weights_us: dict[int, float] = field(default_factory=dict)  # latency in µs -> requests
    gateway_cpu: float | None = None
    users_cpu: float = 0.0

    def add(
        self, requests: int, seconds: float, weights_us: Mapping[int, float], used: dict[str, float]
    ) -> None:
        self.requests += requests
        self.seconds += seconds
        for us, weight in weights_us.items():
            self.weights_us[us] = self.weights_us.get(us, 0.0) + weight
        self.users_cpu += used["users"]
        if "gateway" in used:
            self.gateway_cpu = (self.gateway_cpu or 0.0) + used["gateway"]

    def row(self, name: str, load: str) -> Row:
        per_request = 1e6 / self.requests if self.requests else 0.0
        return Row(
            name,
            load,
            self.requests,
            self.requests / self.seconds if self.seconds else 0.0,
            percentile_ms(self.weights_us, 50),
            percentile_ms(self.weights_us, 99),
            None if self.gateway_cpu is None else self.gateway_cpu * per_request,
            self.users_cpu * per_request,
        )


class Direct:
    """GetUser over gRPC with ghz; each run's call count comes from the warm-up's rate, so that it lasts
    about the wanted time (ghz can bound calls but not time, see bench/ghz.py)."""

    def __init__(self, stack: Stack, concurrency: int, ghz_path: Path) -> None:
        self.stack, self.concurrency, self.ghz_path = stack, concurrency, ghz_path
        warm = self.ghz(max(200, 100 * concurrency), 120)
        self.rps = warm.rps

    def ghz(self, requests: int, max_seconds: float) -> GhzResult:
        result = run_ghz(
            target=self.stack.users_target,
            call=CALL,
            metadata={"authorization": f"Bearer {self.stack.token}"},
            data={"user_id": self.stack.user_id},
            requests=requests,
            concurrency=self.concurrency,
            max_seconds=max_seconds,
            ghz=self.ghz_path,
        )
        if result.errors:
            raise BenchError(f"direct gRPC: {result.status_codes} {next(iter(result.error_messages), '')}")
        return result

    def run(self, tally: Tally, seconds: float) -> None:
        requests = max(100, int(self.rps * seconds))
        log(f"direct gRPC: {requests} calls at concurrency {self.concurrency}")
        with cpu_meter({"users": self.stack.users_pid}) as used:
            result = self.ghz(requests, seconds * 4 + 60)
        tally.add(result.count, int(result.report.get("total", 0)) / 1e9, ghz_weights_us(result), used)


@dataclass(frozen=True)
class Gateway:
    server: str
    url: str
    pid: int

    def wrk(self, stack: Stack, connections: int, seconds: float) -> tuple[WrkResult, dict[str, float]]:
        """One wrk run; fails unless every answer was a 200."""
        what = f"gateway ({self.server}), {connections} connection(s)"
        before = route_answers(self.url)
        with cpu_meter({"gateway": self.pid, "users": stack.users_pid}) as used:
            result = run_wrk(
                f"{self.url}/api/v1/users/{stack.user_id}",
                token=stack.token,
                connections=connections,
                seconds=seconds,
            )
        if result.non_2xx or result.socket_errors:
            raise BenchError(
                f"{what}: wrk saw {result.non_2xx} non-2xx answers and {result.socket_errors} socket errors"
            )
        abandoned = check_all_200(before, route_answers(self.url), result.requests, connections, what)
        if abandoned:
            log(f"{what}: {abandoned} request(s) cut off by wrk's stop, counted 500 (client disconnect)")
        return result, used

    def run(self, stack: Stack, tally: Tally, connections: int, seconds: float) -> None:
        log(f"gateway ({self.server}): {seconds:g}s at {connections} connection(s)")
        result, used = self.wrk(stack, connections, seconds)
        tally.add(result.requests, result.seconds, wrk_weights_us(result), used)


def measure(stack: Stack, args: argparse.Namespace) -> list[Row]:
    """Both gateways run side by side on their own ports; every round runs each row for its share of
    ``--seconds``, the order reversed every other round, so noise from the rest of the machine falls on
    every row alike rather than on whichever ran during a burst."""
    from infra.local import free_port

    loads = {"load": args.connections, "c=1": 1}
    names = ["grpc direct (ghz)", *(f"gateway {s} (wrk)" for s in args.servers)]
    tallies = {(name, load): Tally() for name in names for load in loads}
    slice_seconds = args.seconds / args.rounds
    with ExitStack() as running:
        gateways = {}
        for server in args.servers:
            log(f"starting the gateway under {server}")
            url, pid = running.enter_context(gateway(stack, server, free_port()))
            gateways[f"gateway {server} (wrk)"] = Gateway(server, url, pid)
        log("warming up: the users cache, each gateway's token cache and upstream channel")
        direct = {load: Direct(stack, c, args.ghz) for load, c in loads.items()}
        for gw in gateways.values():
            gw.wrk(stack, args.connections, 2)
        for round_index in range(args.rounds):
            order = names if round_index % 2 == 0 else names[::-1]
            for load, connections in loads.items():
                for name in order:
                    tally = tallies[name, load]
                    if name in gateways:
                        gateways[name].run(stack, tally, connections, slice_seconds)
                    else:
                        direct[load].run(tally, slice_seconds)
    return [tallies[name, load].row(name, load) for load in loads for name in names]


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
    line = f"server: {best} wins {wins[best]} of 4 at load ({a} vs {b}: {detail})"
    leaner = a if cpu_a < cpu_b else b
    if cpu_a != cpu_b and leaner != best:
        # Under contention a server with more runnable threads (granian's runtime thread) wins more of
        # the cores and so more rps, while CPU per request is what sets capacity once workers = cores.
        line += (
            f"\n  measures split: {leaner} uses less gateway CPU per request; on a busy machine rps and"
            " latency also reflect each server's share of the cores: confirm on a quiet machine"
        )
    return line


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
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time of each row, in all")
    parser.add_argument("--rounds", type=int, default=2, help="rows interleaved in this many rounds")
    parser.add_argument("--connections", type=int, default=16, help="concurrent requests of the load rows")
    parser.add_argument("--servers", default="uvicorn,granian", help="comma-separated: uvicorn, granian")
    parser.add_argument("--plot", type=Path, default=ROOT / "bench" / "results" / "gateway_users.png")
    parser.add_argument("--strict", action="store_true", help="exit 1 when no server meets both goals")
    parser.add_argument("--ghz", type=Path, default=GHZ)
    args = parser.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not args.servers or set(args.servers) - set(SERVERS):
        parser.error(f"--servers: choose from {', '.join(SERVERS)}")
    if args.rounds < 1 or args.connections < 1 or args.seconds < args.rounds:
        parser.error("--rounds and --connections must be >= 1, --seconds at least one per round")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, load_before = time.monotonic(), os.getloadavg()[0]
    machine = f"{os.cpu_count()} cores, {os.uname().machine}, Python {sys.version.split()[0]}"
    try:
        with own_stack() as stack:
            rows = measure(stack, args)
    except (BenchError, grpc.RpcError, httpx.HTTPError) as exc:
        detail = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        print(f"bench: {detail}", file=sys.stderr)
        return 2

    load_avg = f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    note = f"one run on {machine} ({load_avg}); load generator, gateway, backends and Redis share the cores"
    print(f"machine: {machine}; {load_avg}. One run, load generator and servers sharing the cores: noisy.")
    print(f"{args.rounds} rounds, rows interleaved; each row {args.seconds:g}s in all")
    print(f"load = {args.connections} concurrent requests (wrk: connections; ghz: streams on 1 connection)")
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
