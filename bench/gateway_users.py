"""Benchmark the gateway: ``GET /api/v1/users/{id}`` through Portico's gateway and through the Go
grpc-gateway peer (``bench/peer``, built on demand) with wrk, against ``GetUser`` direct over gRPC (ghz).

    .venv/bin/python -m bench.gateway_users          # starts Kafka, Redis, PostgreSQL, 4 backends itself

One user reads themself with one token on every call; the users cache and both gateways' verified-token
caches are warm before any measurement. JWT edge validation and the Redis rate limit are on in both
(limits set high enough never to refuse): every answer of either gateway must be a 200 carrying the same
user, or the run fails. Loads: ``--concurrency`` (default 1, 16 and 64 requests in flight). Portico's
gateway runs under ``--servers`` (uvicorn, what ``python -m gateway`` runs; granian on request). With
``--processes 1,2`` each count above 1 adds a row ``gateway N procs``: the gateway under uvicorn with
``PORTICO_GATEWAY_PROCESSES=N`` in front of a users backend of its own with ``PORTICO_USERS_PROCESSES=N``
(same database); CPU is summed over each supervisor's session, so over all its children. All
servers run side by side; each row gets ``--seconds`` in all, split over ``--rounds`` interleaved rounds
(order reversed every other round); latencies are merged (ghz: every call; wrk: 1000 quantiles per run).
Columns: rps, p50, p99, and CPU-µs per request of the gateway's processes and of the users backend,
from /proc utime+stime before and after each run; each server's RSS idle after the warm-up.
Prints the rows, Portico over the peer (CPU per request, goal <= 1.5x; rps), the latency each gateway
adds at c=1, the earlier goals (rps >= 0.7 x direct at c=16, <= 0.3 ms p50 added at c=1), saves a PNG
plot and rewrites its section of docs/benchmarks.md (with ``--no-docs``, neither unless ``--plot``).
Exit status: 0; 1 when a goal is missed with ``--strict``; 2 on a setup problem or a wrong answer.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
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

from bench import go_peer
from bench.docs_section import write_section
from bench.gateway_compare import (
    DIRECT,
    PEER,
    Idle,
    Row,
    added_table,
    baseline,
    before_after_table,
    compare,
    comparison_table,
    idle_table,
    label,
    load_name,
    portico,
    rows_table,
    verdict,
)
from bench.ghz import GHZ, BenchError, GhzResult, run_ghz
from bench.plot import save_bars
from bench.sessions import session_cpu_seconds, session_rss_bytes
from bench.wrk import WrkResult, run_wrk
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
CALL = "users.v1.UserService/GetUser"
ROUTE = "/api/v1/users/{user_id}"  # the route template the gateway labels its metrics with
PASSWORD = "bench-Gateway-reads-2026"  # noqa: S105 (the benchmark user's password)
RPS_GOAL = 0.7  # gateway rps >= this x direct gRPC rps, at GOAL_LOAD
ADDED_P50_GOAL_MS = 0.3  # gateway p50 - direct p50 at c=1
GOAL_LOAD = "c=16"
DOCS = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "bench" / "results" / "gateway_users.png"
SECTION = "bench.gateway_users"  # the marked section of DOCS each run rewrites
# Never refuse during the run (the limiter is still consulted in Redis on every request).
LIMITS = {
    "PORTICO_GATEWAY_RATE_LIMIT_PER_IP": "100000000/minute",
    "PORTICO_GATEWAY_RATE_LIMIT_PER_USER": "100000000/hour",
    "PORTICO_AUTH_ACCESS_TOKEN_TTL": "3600",
}


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


@contextmanager
def cpu_meter(pids: dict[str, int]) -> Iterator[dict[str, float]]:
    """CPU seconds used by each process session during the block."""
    before = {name: session_cpu_seconds(pid) for name, pid in pids.items()}
    used: dict[str, float] = {}
    yield used
    used.update({name: session_cpu_seconds(pid) - before[name] for name, pid in pids.items()})


# --- the gateway's own count of answers ----------------------------------------------------------------


def route_answers(metrics_urls: tuple[str, ...]) -> dict[str, float]:
    """``portico_gateway_requests_total`` of GET ``ROUTE`` by status, summed over the gateway's processes
    (each of several is scraped on its own port: the shared one answers from any of them)."""
    counts: dict[str, float] = {}
    for url in metrics_urls:
        _add_route_answers(httpx.get(f"{url}/metrics", timeout=5).text, counts)
    return counts


def _add_route_answers(text: str, counts: dict[str, float]) -> None:
    for family in text_string_to_metric_families(text):
        if family.name != "portico_gateway_requests":
            continue
        for sample in family.samples:
            labels = sample.labels
            if sample.name.endswith("_total") and labels.get("route") == ROUTE and labels["method"] == "GET":
                counts[labels["status"]] = counts.get(labels["status"], 0.0) + sample.value


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


def check_same_user(answers: Mapping[str, bytes], user_id: str) -> None:
    """Every gateway's answer is ``{"data": user}`` for ``user_id``, and the users are the same JSON
    (bytes may differ: key order, spacing)."""
    users = {}
    for name, body in answers.items():
        try:
            user = json.loads(body)["data"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BenchError(f"{name}: not a {{'data': user}} answer: {body[:300]!r}") from exc
        if not isinstance(user, dict) or user.get("id") != user_id:
            raise BenchError(f"{name}: answered another user than {user_id}: {body[:300]!r}")
        users[name] = user
    first, *others = users
    for name in others:
        if users[name] != users[first]:
            raise BenchError(f"{name} and {first} answer different JSON: {users[name]} vs {users[first]}")


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


@dataclass(frozen=True)
class Started:
    """A gateway running: its URL, its session leader, where its answers are counted, its users pid."""

    url: str
    pid: int
    metrics_urls: tuple[str, ...]
    users_pid: int | None = None  # None: the stack's users backend


@contextmanager
def gateway(
    stack: Stack,
    server: str,
    port: int,
    processes: int = 1,
    env: Mapping[str, str] | None = None,
    checkout: Path = ROOT,
) -> Iterator[Started]:
    """The gateway of ``checkout`` under ``server`` on ``port`` (with ``processes`` children), until
    /ready."""
    from harness.gateway import gateway_ready
    from harness.processes import spawn, wait_until
    from infra.procs import free_port_range

    args = SERVERS[server]
    if server == "granian":
        args = [*args, "--host", "127.0.0.1", "--port", str(port)]
    full_env = {**stack.env, **(env or {}), "PORTICO_GATEWAY_PORT": str(port)}
    url = f"http://127.0.0.1:{port}"
    metrics_urls: tuple[str, ...] = (url,)
    if processes > 1:
        base = free_port_range(processes)
        full_env |= {"PORTICO_GATEWAY_PROCESSES": str(processes), "PORTICO_GATEWAY_METRICS_PORT": str(base)}
        metrics_urls = tuple(f"http://127.0.0.1:{base + i}" for i in range(processes))
    name = f"gateway-{server}-{processes}" + ("" if checkout == ROOT else f"-{checkout.name}")
    proc = spawn(name, args, full_env, stack.log_dir, cwd=checkout)
    try:
        for ready_url in metrics_urls:  # every child ready, each asked on its own port
            wait_until(
                lambda u=ready_url: proc.popen.poll() is None and gateway_ready(u),  # type: ignore[misc]
                90,
                f"gateway ({server}, {processes} process(es)) /ready",
            )
        yield Started(url, proc.popen.pid, metrics_urls)
    except TimeoutError as exc:
        raise BenchError(f"{exc}; its log ends:\n{proc.log()[-3000:]}") from exc
    finally:
        proc.terminate()


@contextmanager
def checkout_at(rev: str) -> Iterator[Path]:
    """A detached git worktree of this repository at ``rev`` (its gateway runs on this virtualenv),
    removed afterwards: the "before" of a before/after in one run."""
    with tempfile.TemporaryDirectory(prefix="portico-bench-base-") as tmp:
        path = Path(tmp) / rev.replace("/", "-")
        git = ["git", "-C", str(ROOT), "worktree"]
        try:
            subprocess.run(
                [*git, "add", "--detach", "--quiet", str(path), rev], check=True, capture_output=True
            )
        except subprocess.CalledProcessError as exc:
            raise BenchError(f"--baseline {rev}: {exc.stderr.decode(errors='replace').strip()}") from exc
        try:
            yield path
        finally:
            subprocess.run([*git, "remove", "--force", str(path)], check=False, capture_output=True)


@contextmanager
def scaled(stack: Stack, processes: int) -> Iterator[Started]:
    """A users backend of its own with ``processes`` children (the stack's database) and the gateway
    under uvicorn with as many, in front of it."""
    from harness.backends import start_backend
    from infra.procs import free_port

    own_ports = ("PORTICO_USERS_PORT", "PORTICO_USERS_METRICS_PORT")  # free ones are picked instead
    env = {k: v for k, v in stack.env.items() if k not in own_ports}
    env["PORTICO_USERS_PROCESSES"] = str(processes)
    users = start_backend("users", env, stack.log_dir, timeout=120)
    try:
        with gateway(stack, "uvicorn", free_port(), processes, {"PORTICO_USERS_TARGET": users.target}) as gw:
            yield Started(gw.url, gw.pid, gw.metrics_urls, users.proc.popen.pid)
    finally:
        users.stop()


@contextmanager
def peer(stack: Stack, port: int) -> Iterator[Started]:
    """The Go grpc-gateway peer (built if needed) on ``port``, with the mesh's settings, until /ready."""
    from harness.processes import wait_until

    binary = go_peer.build(log)
    log_file = stack.log_dir / "grpc-gateway-peer.log"
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    with go_peer.running(binary, port, stack.env, log_file) as popen:
        try:
            wait_until(lambda: popen.poll() is None and ready(), 30, "the Go grpc-gateway peer /ready")
        except TimeoutError as exc:
            raise BenchError(f"{exc}; its log ends:\n{log_file.read_text()[-3000:]}") from exc
        yield Started(url, popen.pid, ())


def first_answer(url: str, stack: Stack, what: str) -> bytes:
    """One read through a gateway, the body every answer of the runs must then repeat byte for byte."""
    reply = httpx.get(
        f"{url}/api/v1/users/{stack.user_id}",
        headers={"Authorization": f"Bearer {stack.token}", "Accept-Encoding": "identity"},
        timeout=10,
    )
    if reply.status_code != 200:
        raise BenchError(f"{what}: {reply.status_code} {reply.text[:300]}")
    return reply.content


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
    """An HTTP gateway under measurement: one of Portico's servers, or the peer."""

    name: str  # its row
    url: str
    pid: int
    users_pid: int  # the users backend behind it
    expected: bytes  # the body of every answer: the first one's
    metrics_urls: tuple[str, ...]  # Portico's /metrics count answers by status: checked as well

    def wrk(self, stack: Stack, connections: int, seconds: float) -> tuple[WrkResult, dict[str, float]]:
        """One wrk run; fails unless every answer was a 200 with the expected body."""
        what = f"{self.name}, {connections} connection(s)"
        before = route_answers(self.metrics_urls) if self.metrics_urls else {}
        with cpu_meter({"gateway": self.pid, "users": self.users_pid}) as used:
            result = run_wrk(
                f"{self.url}/api/v1/users/{stack.user_id}",
                token=stack.token,
                connections=connections,
                seconds=seconds,
                expect_body=self.expected,
            )
        if result.non_2xx or result.socket_errors or result.mismatched:
            raise BenchError(
                f"{what}: wrk saw {result.non_2xx} non-2xx answers, {result.socket_errors} socket errors"
                f" and {result.mismatched} answers other than a 200 with the expected user"
            )
        if self.metrics_urls:
            after = route_answers(self.metrics_urls)
            abandoned = check_all_200(before, after, result.requests, connections, what)
            if abandoned:
                log(f"{what}: {abandoned} request(s) cut off by wrk's stop, counted 500 (client disconnect)")
        return result, used

    def run(self, stack: Stack, tally: Tally, connections: int, seconds: float) -> None:
        log(f"{self.name}: {seconds:g}s at {connections} connection(s)")
        result, used = self.wrk(stack, connections, seconds)
        tally.add(result.requests, result.seconds, wrk_weights_us(result), used)


@dataclass(frozen=True)
class Measured:
    rows: list[Row]
    idle: list[Idle]


def processes_row(processes: int) -> str:
    """The row name of the gateway and users backend at ``processes`` processes each."""
    return f"gateway {processes} procs (wrk)"


def start_gateways(running: ExitStack, stack: Stack, args: argparse.Namespace) -> dict[str, Started]:
    """Portico's gateway under each server, at each process count above 1, and the peer: by row name."""
    from infra.local import free_port

    started = {}
    for server in args.servers:
        log(f"starting the gateway under {server}")
        started[portico(server)] = running.enter_context(gateway(stack, server, free_port()))
    if args.baseline:
        log(f"starting the gateway as it was at {args.baseline}")
        checkout = running.enter_context(checkout_at(args.baseline))
        started[baseline(args.baseline)] = running.enter_context(
            gateway(stack, "uvicorn", free_port(), checkout=checkout)
        )
    for processes in args.processes:
        if processes > 1:
            log(f"starting a users backend and the gateway with {processes} processes each")
            started[processes_row(processes)] = running.enter_context(scaled(stack, processes))
    if args.peer:
        log("starting the Go grpc-gateway peer")
        started[PEER] = running.enter_context(peer(stack, free_port()))
    return started


def idle_memory(gateways: Mapping[str, Gateway], stack: Stack) -> list[Idle]:
    """Each server's RSS (its whole session) once the warm-up is over and nothing is sent."""
    time.sleep(1.0)  # let the last warm-up answers drain
    idle = [
        Idle(label(name).replace(" (wrk)", ""), session_rss_bytes(gw.pid)) for name, gw in gateways.items()
    ]
    scaled_users = [
        Idle(f"users backend behind {label(name).replace(' (wrk)', '')}", session_rss_bytes(gw.users_pid))
        for name, gw in gateways.items()
        if gw.users_pid != stack.users_pid
    ]
    return [*idle, Idle("users backend", session_rss_bytes(stack.users_pid)), *scaled_users]


def measure(stack: Stack, args: argparse.Namespace) -> Measured:
    """All gateways run side by side on their own ports; every round runs each row for its share of
    ``--seconds``, the order reversed every other round, so noise from the rest of the machine falls on
    every row alike rather than on whichever ran during a burst."""
    loads = {load_name(c): c for c in args.concurrency}
    with ExitStack() as running:
        started = start_gateways(running, stack, args)
        answers = {name: first_answer(gw.url, stack, name) for name, gw in started.items()}
        check_same_user(answers, stack.user_id)
        gateways = {
            name: Gateway(
                name, gw.url, gw.pid, gw.users_pid or stack.users_pid, answers[name], gw.metrics_urls
            )
            for name, gw in started.items()
        }
        names = [DIRECT, *gateways]
        tallies = {(name, load): Tally() for name in names for load in loads}
        slice_seconds = args.seconds / args.rounds
        log("warming up: the users cache, each gateway's token cache and upstream channel")
        direct = {load: Direct(stack, c, args.ghz) for load, c in loads.items()}
        for gw in gateways.values():
            gw.wrk(stack, max(loads.values()), 2)
        idle = idle_memory(gateways, stack)
        for round_index in range(args.rounds):
            order = names if round_index % 2 == 0 else names[::-1]
            for load, connections in loads.items():
                for name in order:
                    tally = tallies[name, load]
                    if name in gateways:
                        gateways[name].run(stack, tally, connections, slice_seconds)
                    else:
                        direct[load].run(tally, slice_seconds)
    rows = [tallies[name, load].row(name, load) for load in loads for name in names]
    return Measured(rows, idle)


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
    direct_load, direct_c1 = find(rows, DIRECT, GOAL_LOAD), find(rows, DIRECT, "c=1")
    lines, met_by = [], set()
    for server in servers:
        load, c1 = find(rows, portico(server), GOAL_LOAD), find(rows, portico(server), "c=1")
        ratio = load.rps / direct_load.rps if direct_load.rps else 0.0
        added = (c1.p50_ms or 0.0) - (direct_c1.p50_ms or 0.0)
        ok_rps, ok_p50 = ratio >= RPS_GOAL, added <= ADDED_P50_GOAL_MS
        lines.append(
            f"{server}: rps {ratio:.2f} x direct at {GOAL_LOAD} (goal >= {RPS_GOAL}) "
            f"{'met' if ok_rps else 'NOT met'}; "
            f"added p50 at c=1 {added:.3f} ms (goal <= {ADDED_P50_GOAL_MS}) {'met' if ok_p50 else 'NOT met'}"
        )
        if ok_rps and ok_p50:
            met_by.add(server)
    return lines, bool(met_by)


def recommend(rows: list[Row], servers: list[str]) -> str:
    """The server that wins more of rps, p50, p99 and gateway CPU-µs/req at GOAL_LOAD (a tie: less CPU)."""
    if len(servers) < 2:
        return ""
    load = {s: find(rows, portico(s), GOAL_LOAD) for s in servers}
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
    line = f"server: {best} wins {wins[best]} of 4 at {GOAL_LOAD} ({a} vs {b}: {detail})"
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
    short = {DIRECT: "gRPC direct", PEER: "Go peer"}
    labels = [f"{short.get(r.name, r.name.replace(' (wrk)', ''))}\n{r.load}" for r in rows]
    return save_bars(
        path,
        "GET /api/v1/users/{id}: Portico's gateway, the Go grpc-gateway peer, GetUser direct over gRPC",
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


def report(measured: Measured, args: argparse.Namespace, header: str, plot_path: Path | None) -> str:
    """What a run found, as the Markdown of its docs/benchmarks.md section (also printed)."""
    loads = [load_name(c) for c in args.concurrency]
    parts = [header, rows_table(measured.rows)]
    if args.peer:
        for server in args.servers:
            comparison = compare(measured.rows, server, loads)
            parts += [comparison_table(comparison), verdict(comparison) + ".", added_table(comparison)]
        if args.baseline:
            parts.append(before_after_table(measured.rows, args.baseline, args.servers[0], loads))
    parts.append(idle_table(measured.idle))
    if plot_path is not None:
        image = os.path.relpath(plot_path, args.docs.parent if args.docs else ROOT)
        parts.append(f"![gateway benchmark]({image})")
    return "\n\n".join(parts) + "\n"


# --- main -----------------------------------------------------------------------------------------------


def concurrency_list(text: str) -> list[int]:
    values = sorted({int(v) for v in text.split(",") if v.strip()})
    if 1 not in values or 16 not in values or values[0] < 1:
        raise argparse.ArgumentTypeError("a comma-separated list that includes 1 and 16 (the ratios' loads)")
    return values


def processes_list(text: str) -> list[int]:
    values = sorted({int(v) for v in text.split(",") if v.strip()})
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of process counts, each 1 or more")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway_users",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time of each row, in all")
    parser.add_argument("--rounds", type=int, default=4, help="rows interleaved in this many rounds")
    parser.add_argument(
        "--concurrency",
        type=concurrency_list,
        default=[1, 16, 64],
        help="requests in flight (default 1,16,64)",
    )
    parser.add_argument("--servers", default="uvicorn", help="Portico's, comma-separated: uvicorn, granian")
    parser.add_argument("--no-peer", dest="peer", action="store_false", help="leave the Go peer out")
    parser.add_argument(
        "--processes",
        type=processes_list,
        default=[1],
        help="serving processes of the gateway and the users backend: each count above 1 adds a row",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run the gateway as it was at this git revision (a temporary worktree), as a row",
    )
    parser.add_argument(
        "--plot", type=Path, default=None, help=f"the PNG to write (default {PLOT}; none with --no-docs)"
    )
    parser.add_argument("--docs", type=Path, default=DOCS, help=f"rewrite its {SECTION} section")
    parser.add_argument("--no-docs", dest="docs", action="store_const", const=None, help="leave the docs be")
    parser.add_argument("--strict", action="store_true", help="exit 1 when no server meets both goals")
    parser.add_argument("--ghz", type=Path, default=GHZ)
    args = parser.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not args.servers or set(args.servers) - set(SERVERS):
        parser.error(f"--servers: choose from {', '.join(SERVERS)}")
    if args.rounds < 1 or args.seconds < args.rounds:
        parser.error("--rounds must be >= 1, --seconds at least one per round")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(
        [".venv/bin/python", "-m", "bench.gateway_users", *(sys.argv[1:] if argv is None else argv)]
    )
    started, load_before = time.monotonic(), os.getloadavg()[0]
    machine = f"{os.cpu_count()} cores, {os.uname().machine}, Python {sys.version.split()[0]}"
    try:
        with own_stack() as stack:
            measured = measure(stack, args)
    except (BenchError, grpc.RpcError, httpx.HTTPError) as exc:
        detail = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        print(f"bench: {detail}", file=sys.stderr)
        return 2

    took = time.monotonic() - started
    load_avg = f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    note = f"one run on {machine} ({load_avg}); load generator, gateways, backends and Redis share the cores"
    print(f"machine: {machine}; {load_avg}. One run, load generator and servers sharing the cores: noisy.")
    print(f"{args.rounds} rounds, rows interleaved; each row {args.seconds:g}s in all")
    print("c=N: N requests in flight (wrk: connections; ghz: streams on 1 connection)")
    print(table(measured.rows))
    goal_lines, met = goals(measured.rows, args.servers)
    print("goals:")
    for line in goal_lines:
        print(f"  {line}")
    recommendation = recommend(measured.rows, args.servers)
    if recommendation:
        print(recommendation)
    # --no-docs leaves the work tree as it was: no plot either, unless one is asked for.
    plot_path = args.plot or (PLOT if args.docs is not None else None)
    if plot_path is not None:
        plot_path = plot(measured.rows, plot_path, note)
        print(f"plot: {plot_path}")
    header = (
        f"`{command}`, {datetime.date.today().isoformat()}: {machine}, {load_avg}; each row "
        f"{args.seconds:g} s in {args.rounds} interleaved rounds; the run took {took:.0f} s."
    )
    section = report(measured, args, header, plot_path)
    print(section)
    if args.docs is not None:
        write_section(args.docs, SECTION, section)
        print(f"docs: {args.docs} (section {SECTION})")
    log(f"done in {time.monotonic() - started:.0f}s")
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
