"""RED metrics per method: counts by status code, durations, in-flight, for unary and server streams."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from prometheus_client import CollectorRegistry

from meshkit.rpc.interceptors.metrics import GrpcServerMetrics, MetricsInterceptor

SERVICE = "portico.test.Echo"


async def say(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    if request == b"missing":
        await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    if request == b"crash":
        raise RuntimeError("bug")
    return request


async def repeat(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> AsyncIterator[bytes]:
    for _ in range(3):
        yield request


def _handlers() -> grpc.GenericRpcHandler:
    identity = {"request_deserializer": None, "response_serializer": None}
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Say": grpc.unary_unary_rpc_method_handler(say, **identity),  # type: ignore[arg-type]
            "Repeat": grpc.unary_stream_rpc_method_handler(repeat, **identity),  # type: ignore[arg-type]
        },
    )


@pytest.fixture
async def served() -> AsyncIterator[tuple[grpc.aio.Channel, CollectorRegistry]]:
    registry = CollectorRegistry()
    server = grpc.aio.server(interceptors=[MetricsInterceptor(GrpcServerMetrics(registry))])
    server.add_generic_rpc_handlers((_handlers(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel, registry
    await server.stop(None)


def _handled(registry: CollectorRegistry, method: str, code: str, kind: str = "unary") -> float:
    labels = {"grpc_service": SERVICE, "grpc_method": method, "grpc_type": kind, "grpc_code": code}
    return registry.get_sample_value("grpc_server_handled_total", labels) or 0.0


async def test_unary_calls_are_counted_by_status(served: tuple[grpc.aio.Channel, CollectorRegistry]) -> None:
    channel, registry = served
    call = channel.unary_unary(f"/{SERVICE}/Say")
    assert await call(b"hi") == b"hi"
    for payload, code in ((b"missing", grpc.StatusCode.NOT_FOUND), (b"crash", grpc.StatusCode.UNKNOWN)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(payload)
        assert err.value.code() == code

    assert _handled(registry, "Say", "OK") == 1
    assert _handled(registry, "Say", "NOT_FOUND") == 1
    assert _handled(registry, "Say", "UNKNOWN") == 1
    labels = {"grpc_service": SERVICE, "grpc_method": "Say", "grpc_type": "unary"}
    assert registry.get_sample_value("grpc_server_handling_seconds_count", labels) == 3
    assert (
        registry.get_sample_value("grpc_server_in_flight", {"grpc_service": SERVICE, "grpc_method": "Say"})
        == 0
    )


async def test_server_streams_are_counted_once(served: tuple[grpc.aio.Channel, CollectorRegistry]) -> None:
    channel, registry = served
    items = [item async for item in channel.unary_stream(f"/{SERVICE}/Repeat")(b"x")]
    assert items == [b"x", b"x", b"x"]
    assert _handled(registry, "Repeat", "OK", kind="server_stream") == 1
