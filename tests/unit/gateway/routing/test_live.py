"""The live route table keeps its table (and the descriptor pool behind it) while the backends answer
with the same files, and replaces it when they change: a rebuild on every refresh would leave a pool's
worth of cyclic garbage behind each interval, which only a rare full collection frees."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2

from gateway.routing import live
from gateway.routing.live import DESCRIPTOR_SET, LiveRoutes

Files = list[descriptor_pb2.FileDescriptorProto]


def _contract() -> tuple[list[str], Files]:
    files = list(descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file)
    names = [f"{f.package}.{s.name}" for f in files for s in f.service if not f.package.startswith("grpc.")]
    return names, files


async def test_refresh_keeps_the_table_while_the_files_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    names, files = _contract()
    answers = {"current": (names, files)}

    async def fake_fetch_files(channel: grpc.aio.Channel, timeout: float = 5.0) -> tuple[list[str], Files]:
        return answers["current"]

    monkeypatch.setattr(live, "fetch_files", fake_fetch_files)
    routes = LiveRoutes({"all": None})  # type: ignore[dict-item]  # the fake never uses a channel
    assert await routes.refresh()  # from the descriptor set to reflection: built once
    first = routes.table
    for _ in range(5):
        assert not await routes.refresh()
        assert routes.table is first

    changed = [descriptor_pb2.FileDescriptorProto.FromString(f.SerializeToString()) for f in files]
    changed[-1].options.java_package = "example.changed"  # any change in a file rebuilds
    answers["current"] = (names, changed)
    assert await routes.refresh()
    assert routes.table is not first
