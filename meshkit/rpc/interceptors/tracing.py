"""A SERVER span per call, continuing the caller's W3C ``traceparent`` (and baggage) from its metadata.

It records what opentelemetry-instrumentation-grpc's aio server interceptor records (the span named
after the method path; ``rpc.system``, ``rpc.service``, ``rpc.method``, ``rpc.grpc.status_code``,
``rpc.user_agent``, the peer's ``net.peer.*``; ERROR on the same status codes) for less work per call:
the method's attributes are built once, and the call's context is not wrapped in a proxy that watches
``abort``/``set_code`` — the status is read from the context when the call ends, as the RED metrics
read it. Outermost, so the span is current for everything below it: metrics exemplars, log lines'
trace ids, calls to other backends and the events a call records.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextvars import Token
from typing import Any
from urllib.parse import unquote

import grpc
from opentelemetry import context as context_api
from opentelemetry import propagate, trace
from opentelemetry.context import Context as TraceContext
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from meshkit.rpc.context import Context
from meshkit.rpc.interceptors.base import Stream, Unary, WrappingInterceptor, call_code

# The codes that make the span an error, as the instrumentation decides (a client's mistake is not).
ERROR_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_LOOPBACK = ("[::1]", "127.0.0.1")
# How a call ends without an error of its own: a status it aborted with (already the span's status),
# a cancellation, a stream the client stopped reading.
_NOT_ERRORS = (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit)

Attributes = dict[str, str | int]
Attached = Token[TraceContext]  # the current context before the span, restored when it ends


def peer_attributes(peer: str | None) -> Attributes:
    """``net.peer.ip``/``.port`` (and ``net.peer.name`` on loopback) of a gRPC peer string such as
    ``ipv4:127.0.0.1:5555`` or ``ipv6:[::1]:5555``; nothing for a Unix socket or an unparsable peer."""
    if not peer or peer.startswith("unix:"):
        return {}
    address, _, port = peer.split(",", 1)[0].partition(":")[2].rpartition(":")
    if not address:
        return {}
    ip = unquote(address) if "%" in address else address
    found: Attributes = {"net.peer.ip": ip, "net.peer.port": port}
    if ip in _LOOPBACK:
        found["net.peer.name"] = "localhost"
    return found


class TracingInterceptor(WrappingInterceptor):
    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer("meshkit.rpc", tracer_provider=tracer_provider)

    @staticmethod
    def _method_attributes(method: str) -> Attributes:
        service, _, name = method.lstrip("/").partition("/")
        return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}

    def _start(self, method: str, attributes: Attributes, context: Context) -> tuple[Span, Attached]:
        metadata = dict(context.invocation_metadata() or ())
        parent = propagate.extract(metadata)
        attributes = {**attributes, **peer_attributes(context.peer())}
        agent = metadata.get("user-agent")
        if isinstance(agent, str):
            attributes["rpc.user_agent"] = agent
        span = self._tracer.start_span(method, parent, SpanKind.SERVER, attributes)
        return span, context_api.attach(trace.set_span_in_context(span, parent))

    @staticmethod
    def _end(span: Span, token: Attached, context: Context, error: BaseException | None) -> None:
        try:
            if span.is_recording():
                code = call_code(context, error)
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if code in ERROR_CODES:
                    span.set_status(Status(StatusCode.ERROR, f"{code}:{context.details() or ''}"))
                if error is not None and not isinstance(error, _NOT_ERRORS):
                    span.record_exception(error)
        finally:
            context_api.detach(token)
            span.end()

    def wrap_unary(self, behavior: Unary, method: str) -> Unary:
        attributes = self._method_attributes(method)

        async def unary(request: Any, context: Context) -> Any:
            span, token = self._start(method, attributes, context)
            error: BaseException | None = None
            try:
                return await behavior(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._end(span, token, context, error)

        return unary

    def wrap_stream(self, behavior: Stream, method: str) -> Stream:
        attributes = self._method_attributes(method)

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            span, token = self._start(method, attributes, context)
            error: BaseException | None = None
            try:
                async for item in behavior(request, context):
                    yield item
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._end(span, token, context, error)

        return stream
