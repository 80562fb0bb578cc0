"""SIGTERM under load, again and again, for every Portico process: no call it accepted fails, new calls are
refused cleanly, and it exits within its grace plus two seconds — so its replacement, started on the
same ports at once, can bind them.

Each process runs on its own free ports (never the session's mesh) against the session's Kafka and Redis.
``PORTICO_FAULT_SIGTERM_RESTARTS`` sets the restarts per process (20 by default, what ``make test`` runs).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from harness.backends import SERVING, health_status, spawn_backend
from harness.inflight import Call, Load, Verdict, grpc_call, http_call, judge
from harness.infra import InfraEnv
from harness.processes import Proc, spawn, wait_until
from harness.tokens import TokenIssuer
from infra.procs import free_port
from meshkit.shutdown import MARGIN
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc
from stubs.broker.v1 import broker_pb2, broker_pb2_grpc
from stubs.posts.v1 import posts_pb2, posts_pb2_grpc
from stubs.users.v1 import users_pb2, users_pb2_grpc

RESTARTS = int(os.environ.get("PORTICO_FAULT_SIGTERM_RESTARTS", "20"))
GRACE = 3.0
LOAD_SECONDS = 1.0  # of load before each SIGTERM
CLIENTS = 4
START_TIMEOUT = 90
NOT_FOUND = frozenset({grpc.StatusCode.NOT_FOUND})
UNAUTHENTICATED = frozenset({grpc.StatusCode.UNAUTHENTICATED})


@dataclass
class Target:
    """How to start one process on fixed ports, know it is up, and load it."""

    env: dict[str, str]
    start: Callable[[Path], Proc]
    ready: Callable[[], bool]
    make_call: Callable[[], Call]


def _backend(name: str, env: dict[str, str]) -> Callable[[Path], Proc]:
    port, metrics_port = int(env[f"PORTICO_{name.upper()}_PORT"]), free_port()
    return lambda log_dir: spawn_backend(name, env, log_dir, port=port, metrics_port=metrics_port).proc


def _serving(target: str) -> Callable[[], bool]:
    return lambda: health_status(target) == SERVING


def _metadata(issuer: TokenIssuer) -> tuple[tuple[str, str], ...]:
    token = issuer.token(str(uuid.uuid4()), "faults", ("admin", "user"), email="f@example.com", ttl=3600)
    return (("authorization", f"Bearer {token}"),)


def _grpc_load(
    target: str, invoke: Callable[[grpc.Channel], object], answers: frozenset[grpc.StatusCode]
) -> Callable[[], Call]:
    def make_call() -> Call:
        channel = grpc.insecure_channel(target)  # one per client thread, kept across restarts
        return lambda: grpc_call(lambda: invoke(channel), answers)

    return make_call


def target_for(name: str, infra: InfraEnv, issuer: TokenIssuer, tmp: Path) -> Target:
    port = free_port()
    address = f"127.0.0.1:{port}"
    dead = f"127.0.0.1:{free_port()}"
    env = {
        **infra.env(),
        "PORTICO_SHUTDOWN_GRACE": str(GRACE),
        "PORTICO_RUN_DIR": str(tmp / "run"),
        "PORTICO_JWKS_TARGET": issuer.target,
        "PORTICO_USERS_TARGET": dead,
        "PORTICO_AUTH_TARGET": dead,
        "PORTICO_POSTS_TARGET": dead,
        "PORTICO_BROKER_TARGET": dead,
        "PORTICO_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / f'{name}.db'}",
        f"PORTICO_{name.upper()}_CONSUMER_GROUP": f"portico-{name}-{port}",
        f"PORTICO_{name.upper()}_PORT": str(port),
    }
    meta = _metadata(issuer)
    if name == "users":

        def invoke(ch: grpc.Channel) -> object:
            request = users_pb2.GetUserRequest(user_id=str(uuid.uuid4()))
            return users_pb2_grpc.UserServiceStub(ch).GetUser(request, metadata=meta, timeout=15)

        # The token's subject is no user of this database: users answers UNAUTHENTICATED after its lookup.
        make_call = _grpc_load(address, invoke, NOT_FOUND | UNAUTHENTICATED)
    elif name == "auth":
        env["PORTICO_JWKS_TARGET"] = address  # its own keys
        env["PORTICO_AUTH_LOGIN_IP_LIMIT"] = "1000000"  # the throttle answers alike; keep hashing real

        def invoke(ch: grpc.Channel) -> object:
            # An unknown account: a real login's work (lookup, throttle, one argon2 verification, audit).
            request = auth_pb2.LoginRequest(tenant_id="faults", username=uuid.uuid4().hex, password="x" * 12)
            return auth_pb2_grpc.AuthServiceStub(ch).Login(request, timeout=15)

        make_call = _grpc_load(address, invoke, UNAUTHENTICATED)
    elif name == "posts":
        env["PORTICO_POSTS_BLOB_STORE_URL"] = str(tmp / "blobs")

        def invoke(ch: grpc.Channel) -> object:
            request = posts_pb2.GetPostRequest(post_id=str(uuid.uuid4()))
            return posts_pb2_grpc.PostServiceStub(ch).GetPost(request, metadata=meta, timeout=15)

        make_call = _grpc_load(address, invoke, NOT_FOUND)
    elif name == "broker":

        def invoke(ch: grpc.Channel) -> object:
            request = broker_pb2.PublishMessageRequest(topic="sigterm-load", message="m")
            return broker_pb2_grpc.MessageServiceStub(ch).PublishMessage(request, metadata=meta, timeout=15)

        make_call = _grpc_load(address, invoke, frozenset())
    else:
        return _gateway_target(env, port)
    return Target(env, _backend(name, env), _serving(address), make_call)


def _gateway_target(env: dict[str, str], port: int) -> Target:
    env = {**env, "PORTICO_GATEWAY_PORT": str(port)}
    url = f"http://127.0.0.1:{port}"

    def make_call() -> Call:
        client = httpx.Client(timeout=15)
        return lambda: http_call(client, f"{url}/health")

    return Target(
        env, lambda log_dir: spawn("gateway", ["-m", "gateway"], env, log_dir), lambda: _up(url), make_call
    )


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _sigterm_once(name: str, target: Target, log_dir: Path) -> tuple[float, Verdict, int, str]:
    """Start the process, load it, SIGTERM it: seconds to exit, the calls' verdict, exit code, log tail."""
    proc = target.start(log_dir)
    try:
        # A replacement that cannot bind its port exits, and fails here with its log.
        wait_until(lambda: target.ready() or proc.popen.poll() is not None, START_TIMEOUT, f"{name} up")
        assert proc.popen.poll() is None, proc.log()[-3000:]
        load = Load(target.make_call, CLIENTS).start()
        time.sleep(LOAD_SECONDS)
        signalled = time.monotonic()
        os.kill(proc.popen.pid, signal.SIGTERM)
        code = proc.popen.wait(GRACE + MARGIN + 10)
        exit_s = time.monotonic() - signalled
        time.sleep(0.3)  # new calls meet the closed port
        return exit_s, judge(load.stop(), signalled), code, proc.log()[-3000:]
    finally:
        proc.terminate(5)


# Each restart takes 10-25 s on a busy machine, almost all of it start-up: the time limit follows the count.
@pytest.mark.timeout(120 + 40 * RESTARTS)
@pytest.mark.parametrize("name", ["users", "auth", "posts", "broker", "gateway"])
def test_sigterm_under_load(
    name: str,
    infra: InfraEnv,
    issuer: TokenIssuer,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    target = target_for(name, infra, issuer, tmp_path)
    exits: list[float] = []
    verdicts: list[Verdict] = []
    began = time.monotonic()
    for restart in range(RESTARTS):
        log_dir = tmp_path / f"run-{restart}"
        log_dir.mkdir()
        exit_s, verdict, code, log = _sigterm_once(name, target, log_dir)
        exits.append(exit_s)
        verdicts.append(verdict)
        # uvicorn re-raises the SIGTERM it handled once it has shut down.
        assert code in (0, -signal.SIGTERM), f"{name} exited with {code}:\n{log}"
        assert exit_s <= GRACE + MARGIN, f"{name} took {exit_s:.1f}s to exit:\n{log}"
        assert not verdict.failures, f"{name}: {verdict}\n{log}"
    figures = {
        "restarts": len(exits),
        "in_flight_ok": sum(v.in_flight_ok for v in verdicts),
        "in_flight_failed": sum(v.in_flight_failed for v in verdicts),
        "refused_after": sum(v.after_refused for v in verdicts),
        "cancelled_at_close": sum(v.after_cancelled for v in verdicts),
        "max_exit_s": round(max(exits), 2),
        "mean_exit_s": round(sum(exits) / len(exits), 2),
        "grace_s": GRACE,
        "duration_s": round(time.monotonic() - began, 1),
    }
    print(f"FAULT sigterm_under_load[{name}]: " + " ".join(f"{k}={v}" for k, v in figures.items()))
    for key, value in figures.items():
        record_property(key, value)
