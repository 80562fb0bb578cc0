"""The interceptor chain: each method is wrapped once, in grpc's order (the first interceptor outermost),
every call still reads its own metadata, and an unknown or refused method answers UNIMPLEMENTED."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from meshkit.rpc.context import Context, metadata_value
from meshkit.rpc.interceptors.base import Handler, InterceptorChain, Unary, WrappingInterceptor

SERVICE = "portico.test.Chain"


class Recording(WrappingInterceptor):
    """Notes each wrap, and each call as ``<name>:<x-who of the call>``."""

    def __init__(self, name: str, log: list[str], wraps: list[str]) -> None:
        self.name, self.log, self.wraps = name, log, wraps

    def wrap_unary(self, behavior: Unary, method: str) -> Unary:
        self.wraps.append(f"{self.name}{method}")

        async def unary(request: Any, context: Context) -> Any:
            self.log.append(f"{self.name}:{metadata_value(context, 'x-who')}")
            return await behavior(request, context)

        return unary

    def other(self, handler: Handler, method: str) -> Handler | None:
        return None  # refuses client streams, as the authenticator does


async def echo(request: bytes, context: Context) -> bytes:
    return request


async def gather(requests: AsyncIterator[bytes], context: Context) -> bytes:
    return b"".join([item async for item in requests])


@pytest.fixture
async def chained() -> AsyncIterator[tuple[grpc.aio.Channel, list[str], list[str]]]:
    log: list[str] = []
    wraps: list[str] = []
    chain = InterceptorChain([Recording("outer", log, wraps), Recording("inner", log, wraps)])
    server = grpc.aio.server(interceptors=[chain])
    handlers = {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Gather": grpc.stream_unary_rpc_method_handler(gather),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel, log, wraps
    await server.stop(None)


async def test_a_method_is_wrapped_once_and_each_call_reads_its_own_metadata(
    chained: tuple[grpc.aio.Channel, list[str], list[str]],
) -> None:
    channel, log, wraps = chained
    call = channel.unary_unary(f"/{SERVICE}/Echo")
    assert await call(b"1", metadata=(("x-who", "alice"),)) == b"1"
    assert await call(b"2", metadata=(("x-who", "bob"),)) == b"2"
    assert wraps == [f"inner/{SERVICE}/Echo", f"outer/{SERVICE}/Echo"]
    assert log == ["outer:alice", "inner:alice", "outer:bob", "inner:bob"]


async def test_unknown_and_refused_methods_are_unimplemented(
    chained: tuple[grpc.aio.Channel, list[str], list[str]],
) -> None:
    channel, log, _ = chained
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await channel.unary_unary(f"/{SERVICE}/Nope")(b"")
        assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.stream_unary(f"/{SERVICE}/Gather")(iter([b"a"]))
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert log == []
