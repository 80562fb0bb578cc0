"""Descriptor sources: server reflection against an in-process grpc.aio server, and its failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection

from gateway.routing.sources import DescriptorSourceError, fetch_services, load_descriptor_set
from gateway.routing.table import build_table
from infra.paths import REPO_ROOT
from stubs.auth.v1 import auth_pb2
from stubs.users.v1 import users_pb2

DESCRIPTOR_SET = REPO_ROOT / "stubs" / "portico.binpb"
SERVED = [
    users_pb2.DESCRIPTOR.services_by_name["UserService"].full_name,
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
]


@pytest.fixture
async def target() -> AsyncIterator[str]:
    # Reflection answers from the default pool, where the imported stubs put their files; the
    # servicers themselves are not needed to describe the services.
    server = grpc.aio.server()
    reflection.enable_server_reflection([*SERVED, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def test_reflection_gives_the_same_routes_as_the_descriptor_set(target: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        services = await fetch_services(channel, timeout=5)
    assert sorted(s.full_name for s in services) == sorted(SERVED)
    from_reflection = build_table(services).table
    from_file = build_table(s for s in load_descriptor_set(DESCRIPTOR_SET) if s.full_name in SERVED).table
    assert from_reflection is not None
    assert from_file is not None
    assert from_reflection.keys() == from_file.keys()
    # A fresh pool: not the generated stubs' default pool.
    assert services[0].file.pool is not users_pb2.DESCRIPTOR.pool


async def test_unreachable_backend_is_a_source_error() -> None:
    async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:
        with pytest.raises(DescriptorSourceError, match="reflection"):
            await fetch_services(channel, timeout=0.5)


def test_incomplete_descriptor_set_is_refused(tmp_path: Path) -> None:
    full = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    kept = [f for f in full.file if f.name != "google/api/http.proto"]
    partial = descriptor_pb2.FileDescriptorSet(file=kept)
    path = tmp_path / "partial.binpb"
    path.write_bytes(partial.SerializeToString())
    with pytest.raises(DescriptorSourceError, match=r"google/api/http\.proto, which is missing"):
        load_descriptor_set(path)
