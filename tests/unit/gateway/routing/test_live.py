"""The live route table keeps its table (and the descriptor pool behind it) while the backends answer
with the same files, and replaces it when they change: a rebuild on every refresh would leave a pool's
worth of cyclic garbage behind each interval, which only a rare full collection frees."""

from __future__ import annotations

import grpc
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from gateway.routing import live
from gateway.routing.live import DESCRIPTOR_SET, LiveRoutes
from gateway.routing.table import Match

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


def _extra_file() -> descriptor_pb2.FileDescriptorProto:
    """A service in a package no backend is named after: `extra.v1.Svc`, `GET /api/v1/extras/{id}`."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="extra/v1/svc.proto",
        package="extra.v1",
        syntax="proto3",
        dependency=["google/api/annotations.proto"],
    )
    proto.message_type.add(name="Req").field.add(
        name="id", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    )
    method = proto.service.add(name="Svc").method.add(
        name="Get", input_type=".extra.v1.Req", output_type=".extra.v1.Req"
    )
    method.options.Extensions[annotations_pb2.http].get = "/api/v1/extras/{id}"
    return proto


async def test_routes_follow_the_backend_that_reflected_their_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names, files = _contract()
    own = {backend: [n for n in names if n.startswith(backend + ".")] for backend in ("users", "posts")}
    listed = {"users": own["users"], "posts": [n for n in names if n not in own["users"]]}
    extra = [*files, _extra_file()]

    async def fake_fetch_files(channel: str, timeout: float = 5.0) -> tuple[list[str], Files]:
        return listed[channel], extra

    monkeypatch.setattr(live, "fetch_files", fake_fetch_files)
    routes = LiveRoutes({"users": "users", "posts": "posts"})  # type: ignore[dict-item]  # names as channels

    def upstream_of(path: str) -> str | None:
        found = routes.table.match("GET", path)
        return found.route.upstream if isinstance(found, Match) else None

    assert upstream_of("/api/v1/extras/x") is None  # not in the descriptor set
    listed["users"] = [*own["users"], "extra.v1.Svc"]  # users now serves a service in a new package
    assert await routes.refresh()
    assert (upstream_of("/api/v1/extras/x"), upstream_of("/api/v1/users/me")) == ("users", "users")
    assert upstream_of("/api/v1/topics/t/messages") == "posts"  # wherever it was listed

    listed["posts"] = [*listed["posts"], "extra.v1.Svc"]  # claimed twice: ambiguous, the table stays
    before = routes.table
    assert not await routes.refresh()
    assert routes.table is before

    listed["users"], listed["posts"] = own["users"], listed["posts"][:-1]  # it went away
    assert await routes.refresh()
    assert upstream_of("/api/v1/extras/x") is None


async def test_a_backend_not_answering_keeps_its_last_routes_and_the_others_still_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names, files = _contract()
    users = [n for n in names if n.startswith("users.")]
    listed = {"users": users, "posts": [n for n in names if n not in users]}
    down: set[str] = {"posts"}
    extra = [*files, _extra_file()]

    async def fake_fetch_files(channel: str, timeout: float = 5.0) -> tuple[list[str], Files]:
        if channel in down:
            raise ConnectionError(f"{channel} is down")
        return listed[channel], extra

    monkeypatch.setattr(live, "fetch_files", fake_fetch_files)
    routes = LiveRoutes({"users": "users", "posts": "posts"})  # type: ignore[dict-item]  # names as channels

    def upstream_of(path: str) -> str | None:
        found = routes.table.match("GET", path)
        return found.route.upstream if isinstance(found, Match) else None

    # posts has never answered: nothing is known of what it serves, so the start-up table stays.
    assert not await routes.refresh()
    assert routes.source == "descriptor set"

    down.clear()
    assert await routes.refresh()
    down.add("posts")  # posts goes away; users gains a service meanwhile
    listed["users"] = [*users, "extra.v1.Svc"]
    assert await routes.refresh()
    assert upstream_of("/api/v1/extras/x") == "users"
    assert upstream_of("/api/v1/topics/t/messages") == "posts"  # as posts last answered
