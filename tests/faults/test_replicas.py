"""Replicas that come and go: two gateways and two replicas of users, auth and posts on PostgreSQL, every
target listing both replicas (``ipv4:a,b``). Under light load through both gateways one replica of each
is SIGKILLed: idempotent reads see no error (the channels skip the dead replica, the gateway retries the
calls that were on it), writes lose at most the calls in flight on it. Started again, each replica gets
calls within the channels' reconnect back-off (``gateway.upstreams.MAX_RECONNECT_BACKOFF_MS``, peers'
``PEER_OPTIONS``), its SERVING health reaching them through their health watch.

The broker runs one replica: no route here reads from it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from gateway.dispatch import DEFAULT_DEADLINE_S
from gateway.upstreams import MAX_RECONNECT_BACKOFF_MS
from harness.accounts import bearer, register, registration
from harness.backends import SERVING, BackendProcess, spawn_backend
from harness.gateway import gateway_ready
from harness.infra import InfraEnv
from harness.mesh import mesh_env
from harness.processes import Proc, spawn, wait_until
from infra.procs import free_port

pytestmark = pytest.mark.infra

REPLICATED = ("users", "auth", "posts")
SERVICES = {"users": "users.v1.UserService", "auth": "auth.v1.AuthService", "posts": "posts.v1.PostService"}
READS = ("/api/v1/users/me", "/.well-known/jwks.json", "/api/v1/posts?page_size=5")  # retryable GETs
PAUSE_S = 0.05  # per client between requests: light load
STEADY_S = 3.0  # traffic before the kill, and after it before the restart
CLIENT_TIMEOUT_S = DEFAULT_DEADLINE_S + 5
# A channel tries a dead address again at least every max back-off (gRPC adds up to 20 % jitter); the
# replica is then reached on the first call after its health watch answers SERVING. Connection ageing
# (PORTICO_GRPC_MAX_CONNECTION_AGE, ±10 %) is the other path to a replica, through re-resolution: the
# bound allows for either. The load sends a call every PAUSE_S per client.
AGE_S = 5.0
SERVING_TO_TRAFFIC_LIMIT_S = 1.2 * MAX_RECONNECT_BACKOFF_MS / 1000 + 1.1 * AGE_S + PAUSE_S


@dataclass(frozen=True)
class Answer:
    sent: float  # monotonic
    ended: float
    kind: str  # "read" or "write"
    route: str
    status: int  # 0: the client gave up


@dataclass
class Replicas:
    env: dict[str, str]
    log_dir: Path
    ports: dict[str, list[int]]
    metrics: dict[str, list[int]]
    backends: dict[tuple[str, int], BackendProcess] = field(default_factory=dict)
    gateways: list[tuple[Proc, str]] = field(default_factory=list)

    def start(self, name: str, index: int) -> BackendProcess:
        backend = spawn_backend(
            name,
            self.env,
            self.log_dir,
            port=self.ports[name][index],
            metrics_port=self.metrics[name][index],
        )
        self.backends[name, index] = backend
        return backend

    def stop(self) -> None:
        for proc, _ in self.gateways:
            proc.terminate()
        for backend in self.backends.values():
            backend.stop()


def _replicated_env(infra: InfraEnv, log_dir: Path) -> Replicas:
    env, ports, metrics, _ = mesh_env(infra.env())
    replicas = Replicas(env, log_dir, {}, {})
    for name in ports:
        count = 2 if name in REPLICATED else 1
        replicas.ports[name] = [ports[name], *(free_port() for _ in range(count - 1))]
        replicas.metrics[name] = [metrics[name], *(free_port() for _ in range(count - 1))]
        addresses = ",".join(f"127.0.0.1:{port}" for port in replicas.ports[name])
        env[f"PORTICO_{name.upper()}_TARGET"] = f"ipv4:{addresses}"
    env["PORTICO_RUN_DIR"] = str(log_dir / "run")  # shared by the replicas: auth's keys, post images
    env["PORTICO_GRPC_MAX_CONNECTION_AGE"] = str(AGE_S)
    return replicas


@pytest.fixture
def replicas(infra: InfraEnv, tmp_path: Path) -> Iterator[Replicas]:
    started = _replicated_env(infra, tmp_path)
    try:
        for name, ports in started.ports.items():
            for index in range(len(ports)):
                started.start(name, index)
        for backend in started.backends.values():
            backend.wait_serving(120)
        for index in range(2):
            port = free_port()
            gateway_env = {
                **started.env,
                "PORTICO_GATEWAY_PORT": str(port),
                "PORTICO_GATEWAY_METRICS_PORT": str(free_port()),
            }
            proc = spawn(f"gateway-{index}", ["-m", "gateway"], gateway_env, tmp_path)
            started.gateways.append((proc, f"http://127.0.0.1:{port}"))
        for _, url in started.gateways:
            wait_until(lambda url=url: gateway_ready(url), 90, f"gateway {url} ready")  # type: ignore[misc]
        yield started
    except BaseException:
        for proc in [b.proc for b in started.backends.values()] + [p for p, _ in started.gateways]:
            print(f"----- {proc.name} -----\n{proc.log()[-3000:]}")
        raise
    finally:
        started.stop()


def _request(turn: int, reads: bool) -> tuple[str, str, dict[str, str] | None]:
    """The kind, route and JSON body (None: a GET) of a client's ``turn``-th request."""
    if reads:
        return "read", READS[turn % len(READS)], None
    if turn % 2:
        return "write", "/api/v1/auth/register", registration("replicas")
    return "write", "/api/v1/posts", {"title": f"replica load {turn}"}


def _client(url: str, headers: dict[str, str], stop: threading.Event, out: list[Answer], reads: bool) -> None:
    with httpx.Client(base_url=url, headers=headers, timeout=CLIENT_TIMEOUT_S) as client:
        turn = 0
        while not stop.is_set():
            turn += 1
            kind, route, body = _request(turn, reads)
            sent = time.monotonic()
            try:
                response = client.get(route) if body is None else client.post(route, json=body)
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            out.append(Answer(sent, time.monotonic(), kind, route, status))
            time.sleep(PAUSE_S)


def _first_call(backend: BackendProcess, service: str) -> float:
    """When the replica handled its first call of ``service`` (polled), from the monotonic clock."""
    wait_until(
        lambda: backend.metric("grpc_server_handled_total", {"grpc_service": service}) > 0,
        SERVING_TO_TRAFFIC_LIMIT_S * 4,  # past the bound: the assertion below reports it with numbers
        f"{backend.name} replica handling calls",
        interval=0.05,
    )
    return time.monotonic()


def test_a_replica_killed_under_load_costs_no_read_and_its_restart_gets_traffic(
    replicas: Replicas, record_property: Callable[[str, object], None]
) -> None:
    urls = [url for _, url in replicas.gateways]
    with httpx.Client(base_url=urls[0], timeout=30) as client:
        auth = bearer(register(client, "replicas"))
    answers: list[Answer] = []  # list.append is atomic: the clients share it
    stop = threading.Event()
    clients = [
        threading.Thread(target=_client, args=(url, auth, stop, answers, reads), daemon=True)
        for url in urls
        for reads in (True, True, False)
    ]
    for thread in clients:
        thread.start()
    restarted: dict[str, BackendProcess] = {}
    serving: dict[str, float] = {}
    traffic: dict[str, float] = {}
    try:
        time.sleep(STEADY_S)
        killed = time.monotonic()
        for name in REPLICATED:  # one replica of each, at once
            os.killpg(replicas.backends[name, 0].proc.popen.pid, signal.SIGKILL)  # its group: its pid
        for name in REPLICATED:
            replicas.backends[name, 0].proc.popen.wait(10)
        dead = time.monotonic()
        time.sleep(STEADY_S)
        for name in REPLICATED:
            restarted[name] = replicas.start(name, 0)
        for name, backend in restarted.items():
            # SERVING on its health (not wait_serving, which also waits for Kafka): reachable from now.
            wait_until(lambda b=backend: b.health() == SERVING, 90, f"{name} SERVING again")  # type: ignore[misc]
            serving[name] = time.monotonic()
        for name, backend in restarted.items():
            traffic[name] = _first_call(backend, SERVICES[name])
        time.sleep(1)  # a little steady traffic after
    finally:
        stop.set()
        for thread in clients:
            thread.join(CLIENT_TIMEOUT_S + 5)

    reads = [a for a in answers if a.kind == "read"]
    writes = [a for a in answers if a.kind == "write"]
    failed_reads = [a for a in reads if a.status != 200]
    failed_writes = [a for a in writes if not 200 <= a.status < 300]
    in_flight = [a for a in writes if a.sent <= dead and a.ended >= killed]
    waits = {name: round(traffic[name] - serving[name], 2) for name in REPLICATED}
    numbers = {
        "reads": len(reads),
        "failed_reads": len(failed_reads),
        "writes": len(writes),
        "failed_writes": len(failed_writes),
        "writes_in_flight_at_kill": len(in_flight),
        "max_read_s": round(max(a.ended - a.sent for a in reads), 3),
        **{f"{name}_serving_to_traffic_s": wait for name, wait in waits.items()},
        "limit_s": round(SERVING_TO_TRAFFIC_LIMIT_S, 2),
    }
    line = "FAULT replica_sigkill: " + " ".join(f"{k}={v}" for k, v in numbers.items())
    print(line)
    record_property("replica_sigkill", line)

    assert not failed_reads, [(a.route, a.status) for a in failed_reads[:10]]
    assert all(a in in_flight for a in failed_writes), "a write failed that was not in flight at the kill"
    assert all(wait < SERVING_TO_TRAFFIC_LIMIT_S for wait in waits.values()), waits
