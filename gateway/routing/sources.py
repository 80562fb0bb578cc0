"""Where service descriptors come from: a descriptor set file, or a backend's gRPC server reflection.

Each load builds a fresh DescriptorPool. The default pool already holds the generated stubs, and a
backend's newer contract must not clash with (or silently merge into) them; a fresh pool per refresh
also lets the old table keep its descriptors until it is swapped out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

# Infrastructure services every backend hosts (health, reflection); the gateway never routes to them.
_INFRA_PREFIX = "grpc."


class DescriptorSourceError(RuntimeError):
    """Descriptors could not be loaded: unreachable backend, reflection error, or an incomplete set."""


def load_descriptor_set(path: Path) -> list[ServiceDescriptor]:
    """All services of a FileDescriptorSet built with its imports (`buf build` / `--include_imports`)."""
    files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()).file
    return services_from_files(files)


def services_from_files(
    files: Iterable[descriptor_pb2.FileDescriptorProto], served: Iterable[str] | None = None
) -> list[ServiceDescriptor]:
    """Resolve the files in a fresh pool and return their services: those named in `served`, or
    when None all but the infrastructure ones."""
    by_name = {f.name: f for f in files}
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(name: str, chain: tuple[str, ...]) -> None:
        # A pool only accepts a file once its imports are in, so add in dependency order.
        if name in added:
            return
        if name in chain:
            raise DescriptorSourceError(f"import cycle: {' -> '.join((*chain, name))}")
        proto = by_name.get(name)
        if proto is None:
            raise DescriptorSourceError(f"{chain[-1] if chain else '?'} imports {name}, which is missing")
        for dependency in proto.dependency:
            add(dependency, (*chain, name))
        pool.Add(proto)
        added.add(name)

    for name in by_name:
        add(name, ())
    services = (
        pool.FindServiceByName(f"{proto.package}.{service.name}" if proto.package else service.name)
        for proto in by_name.values()
        for service in proto.service
    )
    if served is None:
        return [s for s in services if not s.full_name.startswith(_INFRA_PREFIX)]
    wanted = set(served)
    return [s for s in services if s.full_name in wanted]


async def fetch_services(channel: grpc.aio.Channel, timeout: float = 5.0) -> list[ServiceDescriptor]:
    """The services a backend serves, with their files and every import, read by server reflection."""
    names, files = await fetch_files(channel, timeout)
    # Only the listed services: an imported file may declare another backend's service (auth imports
    # users' contract), which this backend does not serve.
    return services_from_files(files, served=names)


async def fetch_files(
    channel: grpc.aio.Channel, timeout: float = 5.0
) -> tuple[list[str], list[descriptor_pb2.FileDescriptorProto]]:
    """The names of the services a backend serves, and their files with every import, unresolved.

    One reflection stream: list the services, then ask for the file of each and, recursively, for
    each import not fetched yet. The whole exchange is bounded by `timeout` so a hung backend delays a
    refresh, not the gateway.
    """
    try:
        async with asyncio.timeout(timeout):
            return await _fetch_files(channel, timeout)
    except TimeoutError as error:
        raise DescriptorSourceError(f"reflection did not answer within {timeout}s") from error
    except grpc.aio.AioRpcError as error:
        raise DescriptorSourceError(f"reflection failed: {error.code().name} {error.details()}") from error


async def _fetch_files(
    channel: grpc.aio.Channel, timeout: float
) -> tuple[list[str], list[descriptor_pb2.FileDescriptorProto]]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(timeout=timeout)
    try:
        exchange = _Exchange(call)
        listed = await exchange.ask(reflection_pb2.ServerReflectionRequest(list_services=""))
        listed_names = (s.name for s in listed.list_services_response.service)
        names = [n for n in listed_names if not n.startswith(_INFRA_PREFIX)]
        files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        pending: list[descriptor_pb2.FileDescriptorProto] = []
        for name in names:
            response = await exchange.ask(reflection_pb2.ServerReflectionRequest(file_containing_symbol=name))
            pending.extend(_collect(response, files))
        while pending:
            proto = pending.pop()
            for dependency in proto.dependency:
                if dependency not in files:
                    response = await exchange.ask(
                        reflection_pb2.ServerReflectionRequest(file_by_filename=dependency)
                    )
                    pending.extend(_collect(response, files))
        await call.done_writing()
        return names, list(files.values())
    finally:
        call.cancel()


class _Exchange:
    """Request/response over the bidirectional reflection stream, one question at a time."""

    def __init__(self, call: grpc.aio.StreamStreamCall) -> None:  # type: ignore[type-arg]
        self._call = call
        self._responses: AsyncIterator[reflection_pb2.ServerReflectionResponse] = call.__aiter__()

    async def ask(
        self, request: reflection_pb2.ServerReflectionRequest
    ) -> reflection_pb2.ServerReflectionResponse:
        await self._call.write(request)
        try:
            response = await self._responses.__anext__()
        except StopAsyncIteration as error:
            raise DescriptorSourceError("reflection stream ended early") from error
        if response.HasField("error_response"):
            err = response.error_response
            raise DescriptorSourceError(f"reflection refused {request}: {err.error_code} {err.error_message}")
        return response


def _collect(
    response: reflection_pb2.ServerReflectionResponse, files: dict[str, descriptor_pb2.FileDescriptorProto]
) -> list[descriptor_pb2.FileDescriptorProto]:
    """Record the files in a response; return the ones not seen before (their imports are next)."""
    new = []
    for serialized in response.file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(serialized)
        if proto.name not in files:
            files[proto.name] = proto
            new.append(proto)
    return new
