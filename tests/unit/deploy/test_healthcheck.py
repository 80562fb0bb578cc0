"""``deploy/healthcheck.py``: ``grpc <port>`` is the backend's readiness (service ""), ``grpc <port>
portico.liveness`` its liveness, each exit 0 only when that service is SERVING."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from infra.paths import REPO_ROOT
from infra.procs import free_port
from meshkit.rpc.health import LIVENESS

SCRIPT = REPO_ROOT / "deploy" / "healthcheck.py"


@pytest.fixture
def unready_but_alive() -> Iterator[int]:
    """A gRPC server whose readiness is NOT_SERVING (its database is down) while it is alive."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(None)


def check(*args: str) -> int:
    return subprocess.run([sys.executable, str(SCRIPT), *args], timeout=30, check=False).returncode


def test_readiness_and_liveness_are_separate_checks(unready_but_alive: int) -> None:
    port = str(unready_but_alive)
    assert check("grpc", port) == 1
    assert check("grpc", port, LIVENESS) == 0


def test_nothing_listening_is_unhealthy() -> None:
    assert check("grpc", str(free_port()), LIVENESS) == 1
