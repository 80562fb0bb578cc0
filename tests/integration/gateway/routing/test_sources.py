"""Routes learned by server reflection from the running backends equal those of the descriptor set."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor

from gateway.routing.sources import fetch_services, load_descriptor_set
from gateway.routing.table import build_table
from harness.mesh import BACKENDS, Mesh
from infra.paths import REPO_ROOT

pytestmark = pytest.mark.infra

DESCRIPTOR_SET = REPO_ROOT / "stubs" / "portico.binpb"
SERVICES = {
    "users": "users.v1.UserService",
    "auth": "auth.v1.AuthService",
    "posts": "posts.v1.PostService",
    "broker": "broker.v1.MessageService",
}


async def _reflect(mesh: Mesh, backend: str) -> list[ServiceDescriptor]:
    async with grpc.aio.insecure_channel(mesh.target(backend)) as channel:
        return await fetch_services(channel, timeout=10)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_each_backend_describes_its_routes(mesh: Mesh, backend: str) -> None:
    services = await _reflect(mesh, backend)
    assert [s.full_name for s in services] == [SERVICES[backend]]
    reflected = build_table(services)
    expected = build_table(s for s in load_descriptor_set(DESCRIPTOR_SET) if s.full_name == SERVICES[backend])
    assert reflected.problems == ()
    assert reflected.table is not None
    assert expected.table is not None
    assert reflected.table.keys() == expected.table.keys()


async def test_table_from_all_backends_equals_the_descriptor_set(mesh: Mesh) -> None:
    services = [s for backend in BACKENDS for s in await _reflect(mesh, backend)]
    reflected = build_table(services).table
    offline = build_table(load_descriptor_set(DESCRIPTOR_SET)).table
    assert reflected is not None
    assert offline is not None
    assert reflected.keys() == offline.keys()
    assert len(reflected.routes) == len(offline.routes) > 0
