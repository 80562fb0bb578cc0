"""A backend's SERVER span per call: it continues the caller's traceparent, carries the method's and the
peer's attributes and the status code, is an error only for the server's own failures, and is the current
span inside the handler (so log lines, exemplars and outgoing calls join the trace)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from meshkit.rpc.context import Context
from meshkit.rpc.interceptors.base import InterceptorChain
from meshkit.rpc.interceptors.internal_errors import ErrorInterceptor
from meshkit.rpc.interceptors.tracing import TracingInterceptor, peer_attributes

SERVICE = "portico.test.Traced"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"

seen_in_handler: list[int] = []


async def say(request: bytes, context: Context) -> bytes:
    seen_in_handler.append(trace.get_current_span().get_span_context().span_id)
    if request == b"missing":
        await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    if request == b"crash":
        raise RuntimeError("bug")
    return request


async def repeat(request: bytes, context: Context) -> AsyncIterator[bytes]:
    for _ in range(2):
        yield request


@pytest.fixture
async def served() -> AsyncIterator[tuple[grpc.aio.Channel, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = grpc.aio.server(
        interceptors=[InterceptorChain([TracingInterceptor(provider), ErrorInterceptor()])]
    )
    handlers = {
        "Say": grpc.unary_unary_rpc_method_handler(say),
        "Repeat": grpc.unary_stream_rpc_method_handler(repeat),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel, exporter
    await server.stop(None)


async def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    """The one span ended: an aborted call's status reaches the client before its span ends."""
    for _ in range(200):
        if exporter.get_finished_spans():
            break
        await asyncio.sleep(0.01)
    (span,) = exporter.get_finished_spans()
    exporter.clear()
    return span


async def test_a_call_continues_the_callers_trace(
    served: tuple[grpc.aio.Channel, InMemorySpanExporter],
) -> None:
    channel, exporter = served
    seen_in_handler.clear()
    assert await channel.unary_unary(f"/{SERVICE}/Say")(b"hi", metadata=(("traceparent", TRACEPARENT),))
    span = await only_span(exporter)
    assert span.name == f"/{SERVICE}/Say"
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert span.parent.is_remote
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert seen_in_handler == [span.context.span_id]  # the current span inside the handler
    attributes = dict(span.attributes or {})
    assert attributes["rpc.system"] == "grpc"
    assert attributes["rpc.service"] == SERVICE
    assert attributes["rpc.method"] == "Say"
    assert attributes["rpc.grpc.status_code"] == 0
    assert attributes["net.peer.ip"] == "127.0.0.1"
    assert attributes["net.peer.name"] == "localhost"
    assert str(attributes["rpc.user_agent"]).startswith("grpc-python")
    assert span.status.status_code is StatusCode.UNSET

    # The handler is wrapped once: a second call without a traceparent starts a trace of its own.
    assert await channel.unary_unary(f"/{SERVICE}/Say")(b"again")
    assert (await only_span(exporter)).context.trace_id != span.context.trace_id


@pytest.mark.parametrize(
    ("payload", "code", "error"),
    [(b"missing", grpc.StatusCode.NOT_FOUND, False), (b"crash", grpc.StatusCode.INTERNAL, True)],
)
async def test_the_status_code_and_whether_it_is_the_servers_error(
    served: tuple[grpc.aio.Channel, InMemorySpanExporter], payload: bytes, code: grpc.StatusCode, error: bool
) -> None:
    channel, exporter = served
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await channel.unary_unary(f"/{SERVICE}/Say")(payload)
    assert failed.value.code() == code
    span = await only_span(exporter)
    assert dict(span.attributes or {})["rpc.grpc.status_code"] == code.value[0]
    assert span.status.status_code is (StatusCode.ERROR if error else StatusCode.UNSET)
    assert not span.events  # an abort is a status, not an exception event


async def test_a_server_stream_has_one_span(served: tuple[grpc.aio.Channel, InMemorySpanExporter]) -> None:
    channel, exporter = served
    items = [item async for item in channel.unary_stream(f"/{SERVICE}/Repeat")(b"x")]
    assert items == [b"x", b"x"]
    span = await only_span(exporter)
    assert span.name == f"/{SERVICE}/Repeat"
    assert dict(span.attributes or {})["rpc.grpc.status_code"] == 0


LOCAL = {"net.peer.ip": "[::1]", "net.peer.name": "localhost"}


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ("ipv4:10.1.2.3:5555", {"net.peer.ip": "10.1.2.3", "net.peer.port": "5555"}),
        ("ipv6:[::1]:5555", {**LOCAL, "net.peer.port": "5555"}),
        ("ipv6:%5B::1%5D:5555", {**LOCAL, "net.peer.port": "5555"}),
        ("ipv4:10.1.2.3:5555,127.0.0.1:1", {"net.peer.ip": "10.1.2.3", "net.peer.port": "5555"}),
        ("unix:/tmp/socket", {}),
        ("", {}),
        ("nonsense", {}),
    ],
)
def test_peer_attributes(peer: str, expected: dict[str, str]) -> None:
    assert peer_attributes(peer) == expected
