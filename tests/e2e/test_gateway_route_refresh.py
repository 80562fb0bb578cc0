"""Routes go to the backend that reflected their service, whatever the service's package is called.

A copy of the repository whose users backend also serves ``reports.v1.ReportService`` (a new service
in a package no backend is named after) replaces the mesh's users backend behind a gateway of this
checkout: the route, unknown to the gateway's descriptor set, appears at a refresh and is served by
users; when users comes back without the service, the route goes at the next refresh.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.accounts import bearer, register
from harness.backends import BackendProcess, backend_env
from harness.gateway import gateway_ready
from harness.mesh import Mesh
from harness.processes import Proc, spawn, wait_until
from infra.paths import REPO_ROOT
from infra.procs import free_port

pytestmark = pytest.mark.infra

ROUTE = "/api/v1/reports/whoami"
REFRESH_SECONDS = "0.5"

PROTO = """syntax = "proto3";

// Reports about the caller, served by the users backend.
package reports.v1;

import "google/api/annotations.proto";
import "portico/gateway/v1/options.proto";

// Answers questions about the caller.
service ReportService {
  // Who the caller's token says they are.
  rpc WhoAmI(WhoAmIRequest) returns (WhoAmIResponse) {
    option (google.api.http) = {get: "/api/v1/reports/whoami"};
    option (portico.gateway.v1.route) = {access: ACCESS_AUTHENTICATED};
  }
}

// Request of WhoAmI.
message WhoAmIRequest {}

// The caller.
message WhoAmIResponse {
  // The caller's tenant.
  string tenant_id = 1;
  // The caller's user id.
  string user_id = 2;
}
"""

# Appended to the copy's backends/users/wiring.py: the users backend serves one more service.
WIRING = """

from meshkit.auth.interceptor import current_principal
from stubs.reports.v1 import reports_pb2, reports_pb2_grpc


class ReportService(reports_pb2_grpc.ReportServiceServicer):
    async def WhoAmI(self, request, context):
        principal = current_principal()
        return reports_pb2.WhoAmIResponse(tenant_id=principal.tenant_id, user_id=principal.sub)


_users_services = services


def services(runtime):
    add = reports_pb2_grpc.add_ReportServiceServicer_to_server
    report = Service.of(reports_pb2.DESCRIPTOR, "ReportService", ReportService(), add)
    return [*_users_services(runtime), report]


SPEC = BackendSpec("users", UsersSettings, services, migrations=MIGRATIONS)
"""


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository with the new service in the users backend, its stubs regenerated."""
    copy = tmp_path_factory.mktemp("route-refresh") / "portico"
    ignore = shutil.ignore_patterns(".git", ".venv", ".cache", ".run", "node_modules", "__pycache__", "go")
    shutil.copytree(REPO_ROOT, copy, ignore=ignore, symlinks=True)
    (copy / "proto" / "reports" / "v1").mkdir(parents=True)
    (copy / "proto" / "reports" / "v1" / "reports.proto").write_text(PROTO)
    wiring = copy / "backends" / "users" / "wiring.py"
    wiring.write_text(wiring.read_text() + WIRING)
    subprocess.run([sys.executable, "scripts/gen_protos.py"], cwd=copy, check=True, timeout=180)
    return copy


def _users(mesh: Mesh, port: int, log_dir: Path, cwd: Path) -> BackendProcess:
    """A users backend of the checkout at ``cwd`` on ``port``, with its own database, serving."""
    env = {
        **mesh.env,
        **backend_env("users", port, free_port()),
        "PORTICO_DATABASE_URL": f"sqlite+aiosqlite:///{log_dir / 'users.db'}",
        "PORTICO_RUN_DIR": str(log_dir / "run"),
        "PYTHONPATH": str(cwd),
    }
    proc = spawn(f"users-{cwd.name}-{uuid.uuid4().hex[:4]}", ["-m", "backends.users"], env, log_dir, cwd=cwd)
    backend = BackendProcess("users", f"127.0.0.1:{port}", int(env["PORTICO_USERS_METRICS_PORT"]), proc)
    try:
        backend.wait_serving(90)
    except BaseException:
        print(proc.log()[-3000:])
        proc.terminate()
        raise
    return backend


@pytest.fixture(scope="module")
def gateway(mesh: Mesh, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    """A gateway of this checkout that refreshes its routes every half second, its users upstream on a
    port of its own (nothing there yet): (URL, users port, log directory)."""
    log_dir = tmp_path_factory.mktemp("route-refresh-logs")
    users_port, port = free_port(), free_port()
    env = {
        **mesh.env,
        "PORTICO_USERS_TARGET": f"127.0.0.1:{users_port}",
        "PORTICO_GATEWAY_PORT": str(port),
        "PORTICO_GATEWAY_ROUTES_REFRESH_SECONDS": REFRESH_SECONDS,
    }
    proc: Proc = spawn("gateway-route-refresh", ["-m", "gateway"], env, log_dir)
    try:
        yield f"http://127.0.0.1:{port}", users_port, log_dir
    finally:
        proc.terminate()
        print(f"----- gateway log -----\n{proc.log()[-3000:]}")


def _status(url: str, headers: dict[str, str]) -> int:
    try:
        return httpx.get(url, headers=headers, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def test_a_service_in_a_new_package_gets_its_route_and_loses_it(
    mesh: Mesh, copy: Path, gateway: tuple[str, int, Path]
) -> None:
    url, users_port, log_dir = gateway
    with httpx.Client(base_url=mesh.gateway_url, timeout=15) as client:
        account = register(client, f"routes-{uuid.uuid4().hex[:8]}")
    auth = bearer(account)
    wait_until(lambda: _status(f"{url}/health", {}) == 200, 60, "gateway /health")
    assert _status(url + ROUTE, auth) == 404  # not in the gateway's descriptor set

    with_reports = _users(mesh, users_port, log_dir, copy)
    try:
        wait_until(lambda: _status(url + ROUTE, auth) == 200, 30, f"{ROUTE} served after a refresh")
        answer = httpx.get(url + ROUTE, headers=auth, timeout=5).json()
        assert answer == {
            "data": {"tenant_id": account["user"]["tenant_id"], "user_id": account["user"]["id"]}
        }
        assert _status(url + ROUTE, {}) == 401  # its policy holds at the edge too
        wait_until(lambda: gateway_ready(url), 30, "gateway /ready")
    finally:
        with_reports.stop()

    without = _users(mesh, users_port, log_dir, REPO_ROOT)
    try:
        wait_until(lambda: _status(url + ROUTE, auth) == 404, 30, f"{ROUTE} gone after a refresh")
        assert _status(f"{url}/api/v1/posts", auth) == 200  # the other backends' routes stay
    finally:
        without.stop()
