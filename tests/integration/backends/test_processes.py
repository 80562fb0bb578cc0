"""Every backend serves health and reflection (checked with grpcurl, a real client) and its metrics."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import grpc
import httpx
import pytest

from harness.mesh import BACKENDS, Mesh
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc

pytestmark = pytest.mark.infra

SERVICES = {
    "users": "users.v1.UserService",
    "auth": "auth.v1.AuthService",
    "posts": "posts.v1.PostService",
    "broker": "broker.v1.MessageService",
}


def run_grpcurl(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), "-plaintext", *args], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reflection_lists_the_service_and_health(mesh: Mesh, grpcurl: Path, backend: str) -> None:
    listed = run_grpcurl(grpcurl, mesh.target(backend), "list")
    assert listed.returncode == 0, listed.stderr
    names = listed.stdout.split()
    assert SERVICES[backend] in names
    assert "grpc.health.v1.Health" in names
    described = run_grpcurl(grpcurl, mesh.target(backend), "describe", SERVICES[backend])
    assert described.returncode == 0, described.stderr
    assert f"service {SERVICES[backend].rsplit('.', 1)[1]}" in described.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_health_is_serving(mesh: Mesh, grpcurl: Path, backend: str) -> None:
    for service in ("", SERVICES[backend]):
        checked = run_grpcurl(
            grpcurl, "-d", f'{{"service": "{service}"}}', mesh.target(backend), "grpc.health.v1.Health/Check"
        )
        assert checked.returncode == 0, checked.stderr
        assert '"status": "SERVING"' in checked.stdout


def _handled(mesh: Mesh, backend: str, method: str, code: str) -> str:
    service, name = method.rsplit("/", 1)
    metrics = httpx.get(f"http://127.0.0.1:{mesh.metrics_ports[backend]}/metrics", timeout=5).text
    line = (
        f'grpc_server_handled_total{{grpc_code="{code}",grpc_method="{name}",'
        f'grpc_service="{service}",grpc_type="unary"}}'
    )
    return next((row for row in metrics.splitlines() if row.startswith(line)), "")


@pytest.fixture(scope="module")
def token(mesh: Mesh) -> str:
    """An access token from the mesh's own auth backend (registration logs in)."""
    with grpc.insecure_channel(mesh.target("auth")) as channel:
        reply = auth_pb2_grpc.AuthServiceStub(channel).Register(
            auth_pb2.RegisterRequest(
                tenant_id=f"mesh-{uuid.uuid4().hex[:8]}",
                username="meshuser",
                email="mesh@example.com",
                password="mesh-Tests-password-1",  # noqa: S106 (a test password)
            ),
            timeout=15,
        )
    return str(reply.access_token)


# One read per backend that any caller with a token may make, over grpcurl (a real client that knows the
# messages only through reflection).
READS = {
    "users": ("users.v1.UserService/GetMe", "{}"),
    "auth": ("auth.v1.AuthService/GetJwks", "{}"),
    "posts": ("posts.v1.PostService/ListPosts", '{"page_size": 5}'),
}


@pytest.mark.parametrize("backend", sorted(READS))
def test_an_internal_client_calls_a_backend_directly_and_is_counted(
    mesh: Mesh, grpcurl: Path, token: str, backend: str
) -> None:
    method, body = READS[backend]
    called = run_grpcurl(
        grpcurl, "-H", f"authorization: Bearer {token}", "-d", body, mesh.target(backend), method
    )
    assert called.returncode == 0, called.stderr
    assert called.stdout.strip().startswith("{")
    assert _handled(mesh, backend, method, "OK")


def test_calls_without_a_token_are_unauthenticated_and_counted(mesh: Mesh, grpcurl: Path) -> None:
    called = run_grpcurl(grpcurl, "-d", "{}", mesh.target("users"), "users.v1.UserService/GetMe")
    assert "Unauthenticated" in called.stderr
    assert _handled(mesh, "users", "users.v1.UserService/GetMe", "UNAUTHENTICATED")


def test_gateway_ready_when_every_part_is_up(mesh: Mesh) -> None:
    response = httpx.get(f"{mesh.gateway_url}/ready", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {name: "up" for name in ("routes", *BACKENDS, "redis", "kafka")}
    assert {part["status"] for part in body["dependencies"].values()} == {"ok"}
    assert response.headers["x-request-id"]
