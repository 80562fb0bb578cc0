"""The gateway and the users backend as two processes each (``PORTICO_<PROCESS>_PROCESSES=2``) in a real
mesh: both children of each serve the shared port, each is scraped on its own metrics port, SIGTERM
drains them all and the supervisors exit 0; a child killed with SIGKILL stops its siblings and its
supervisor exits 1 (it is not restarted: the process manager above restarts the whole). SQLite serves
one process: a second one on the same file, or several processes of one backend on SQLite, stop at start
with a message that says so."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness.accounts import bearer, register
from harness.backends import BackendProcess, metric_value, spawn_backend
from harness.gateway import gateway_ready
from harness.inflight import Call, Load, grpc_call, http_call, judge
from harness.infra import InfraEnv
from harness.mesh import start_mesh
from harness.processes import wait_until
from harness.tokens import TokenIssuer
from harness.users import start_users_backend
from infra.procs import free_port_range
from meshkit.supervisor import SQLITE_REFUSAL

pytestmark = pytest.mark.infra
CONNECTIONS = 40  # new connections each: all on one child of two has odds 2**-39


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pids: list[int], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {pids}"
        time.sleep(0.1)


def handled(metrics_port: int, service: str) -> float:
    return metric_value(metrics_port, "grpc_server_handled_total", {"grpc_service": service})


def gateway_requests(port: int, route: str) -> float:
    return metric_value(port, "portico_gateway_requests_total", {"route": route, "status": "200"})


def test_two_processes_each_serve_drain_on_sigterm_and_exit_0(infra: InfraEnv, tmp_path: Path) -> None:
    gateway_own = free_port_range(2)  # the gateway children's own ports: gateway_own and gateway_own + 1
    env = {**infra.env(), "PORTICO_GATEWAY_PROCESSES": "2", "PORTICO_USERS_PROCESSES": "2"}
    env["PORTICO_GATEWAY_METRICS_PORT"] = str(gateway_own)
    mesh = start_mesh(env, tmp_path)
    stopped = False
    try:
        gateway, users = mesh.procs["gateway"].popen.pid, mesh.procs["users"].popen.pid
        gateway_children, users_children = children(gateway), children(users)
        assert len(gateway_children) == 2
        assert len(users_children) == 2

        # Every gateway child is ready on its own port, and only operations paths answer there.
        for index in range(2):
            own = f"http://127.0.0.1:{gateway_own + index}"
            wait_until(lambda own=own: gateway_ready(own), 60, f"gateway child {index} ready")  # type: ignore[misc]
            assert httpx.get(f"{own}/api/v1/users/me", timeout=10).status_code == 404

        # Real requests on the shared port, each on a new connection: both gateway children answer.
        with httpx.Client(base_url=mesh.gateway_url, timeout=30) as client:
            user = register(client, f"procs_{uuid.uuid4().hex[:8]}")["user"]
            headers = bearer(register(client, user["tenant_id"]))
        route = "/api/v1/users/{user_id}"
        for _ in range(CONNECTIONS):
            reply = httpx.get(f"{mesh.gateway_url}/api/v1/users/{user['id']}", headers=headers, timeout=30)
            assert reply.status_code == 200
            assert reply.json()["data"]["id"] == user["id"]
        per_child = [gateway_requests(gateway_own + index, route) for index in range(2)]
        assert all(count > 0 for count in per_child), per_child
        assert sum(per_child) >= CONNECTIONS, per_child

        # New gRPC connections to the users port: both users children answer, each on its metrics port.
        for _ in range(CONNECTIONS):
            with grpc.insecure_channel(mesh.target("users")) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
        users_metrics = mesh.metrics_ports["users"]
        health = [handled(users_metrics + index, "grpc.health.v1.Health") for index in range(2)]
        assert all(count > 0 for count in health), health

        # SIGTERM under load: every call in flight at the signal is answered, by whichever child had it.
        url = f"{mesh.gateway_url}/api/v1/users/{user['id']}"

        def http_load() -> Call:
            client = httpx.Client(headers=headers, timeout=30)
            return lambda: http_call(client, url)

        def grpc_load() -> Call:
            stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(mesh.target("users")))
            check = health_pb2.HealthCheckRequest()
            return lambda: grpc_call(lambda: stub.Check(check, timeout=10), frozenset())

        through_gateway, to_users = Load(http_load).start(), Load(grpc_load).start()
        time.sleep(1.0)
        gateway_signalled = time.monotonic()
        gateway_code = mesh.procs["gateway"].terminate()
        users_signalled = time.monotonic()
        users_code = mesh.procs["users"].terminate()
        gateway_verdict = judge(through_gateway.stop(), gateway_signalled)
        users_verdict = judge(to_users.stop(), users_signalled)
        codes = mesh.stop()
        stopped = True
        assert gateway_code == 0, mesh.procs["gateway"].log()[-3000:]
        assert users_code == 0, mesh.procs["users"].log()[-3000:]
        assert gateway_verdict.failures == (), gateway_verdict
        assert users_verdict.failures == (), users_verdict
        assert gateway_verdict.in_flight_ok + users_verdict.in_flight_ok > 0, (gateway_verdict, users_verdict)
        assert set(codes.values()) == {0}, codes
        wait_gone(gateway_children + users_children)
    finally:
        if not stopped:
            mesh.stop()


def test_a_child_killed_with_sigkill_stops_its_siblings_and_the_supervisor_exits_1(
    infra: InfraEnv, issuer: TokenIssuer, tmp_path: Path
) -> None:
    backend = start_users_backend(
        infra,
        issuer,
        tmp_path,
        database_url=infra.database_url,  # several processes need PostgreSQL
        extra_env={"PORTICO_USERS_PROCESSES": "2"},
    )
    try:
        first, second = children(backend.proc.popen.pid)
        os.kill(first, signal.SIGKILL)
        assert backend.proc.popen.wait(30) == 1
        wait_gone([second])
        assert "child exited" in backend.proc.log()
    finally:
        backend.stop()


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_port_held_by_another_backend_fails_the_start(
    infra: InfraEnv, issuer: TokenIssuer, tmp_path: Path, processes: str
) -> None:
    # One process binds without SO_REUSEPORT; a supervisor checks the port before any child binds it:
    # either way a clash is an error, never two servers silently sharing the port.
    # PostgreSQL: a second process on the same SQLite file would be refused before it binds.
    running = start_users_backend(infra, issuer, tmp_path / "running", database_url=infra.database_url)
    try:
        port = int(running.target.rsplit(":", 1)[1])
        env = {
            **infra.env(),
            "PORTICO_DATABASE_URL": running.database_url,
            "PORTICO_JWKS_TARGET": issuer.target,
            "PORTICO_USERS_PROCESSES": processes,
        }
        clash = spawn_backend("users", env, tmp_path, port=port)
        try:
            assert clash.proc.popen.wait(120) != 0
        finally:
            clash.stop()
        assert ("Failed to add port" if processes == "1" else "is already in use") in clash.proc.log()
        assert running.health() == health_pb2.HealthCheckResponse.SERVING
    finally:
        running.stop()


def _refused(backend: BackendProcess) -> str:
    try:
        assert backend.proc.popen.wait(120) == 1
    finally:
        backend.stop()
    return backend.proc.log()


def test_sqlite_serves_one_process(infra: InfraEnv, issuer: TokenIssuer, tmp_path: Path) -> None:
    running = start_users_backend(infra, issuer, tmp_path / "running")  # its own SQLite file
    try:
        env = {
            **infra.env(),
            "PORTICO_DATABASE_URL": running.database_url,
            "PORTICO_JWKS_TARGET": issuer.target,
        }
        # A second replica on the same file, on a port of its own.
        log = _refused(spawn_backend("users", env, tmp_path))
        assert f"{SQLITE_REFUSAL}: another process serves from" in log
        # Several processes of one backend on SQLite: refused by the supervisor before any child starts.
        log = _refused(spawn_backend("users", {**env, "PORTICO_USERS_PROCESSES": "2"}, tmp_path))
        assert f"users: {SQLITE_REFUSAL}" in log
        assert running.health() == health_pb2.HealthCheckResponse.SERVING
    finally:
        running.stop()
