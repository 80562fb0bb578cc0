"""The outermost layer of every HTTP request: its SERVER span, its request id, its RED metrics and its
access log line.

One pure-ASGI layer rather than three: each layer costs a coroutine and a send wrapper per request,
for work that always runs together. What each does, and in which order, is what the three did:

- the span (:mod:`gateway.tracing`) opens first and closes last, so it is the current context for the
  metrics' exemplar and for the backend call, and it sees an exception that escapes;
- the request id (:mod:`gateway.request_id`) is chosen before any route runs and set on every response
  start, errors included;
- the metrics (:mod:`gateway.request_metrics`) count the status actually sent, 500 when the app died
  before answering; the access log (:mod:`gateway.access_log`) writes that status too;
- a JSON answer's body is compressed as the client accepts (:mod:`gateway.compression`) in the same send.
"""

from __future__ import annotations

import time

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.access_log import AccessLog
from gateway.compression import Compression
from gateway.request_id import HEADER, choose_request_id
from gateway.request_metrics import record_request
from gateway.tracing import TRACER_NAME, caller_context, finish_span, request_headers, start_attributes


class RequestEdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        tracer_provider: TracerProvider | None = None,
        access_log: AccessLog | None = None,
        compression: Compression | None = None,
    ) -> None:
        self.app = app
        self.tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
        self.access_log = access_log
        self.compression = compression

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = request_headers(scope)
        method = scope["method"]
        # What tracer.start_as_current_span does, without its two generator-based context managers.
        span = self.tracer.start_span(
            method,  # renamed to "METHOD template" once the route is known
            context=caller_context(headers),
            kind=SpanKind.SERVER,
            attributes=start_attributes(scope, headers),
            record_exception=True,
            set_status_on_exception=True,
        )
        try:
            token = otel_context.attach(trace.set_span_in_context(span))
            try:
                await self._answer(scope, receive, send, span, method)
            finally:
                otel_context.detach(token)
        except Exception as exc:
            if span.is_recording():
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            span.end()

    async def _answer(self, scope: Scope, receive: Receive, send: Send, span: Span, method: str) -> None:
        started = time.perf_counter()
        request_id = choose_request_id(scope)
        status = 500  # if the app dies before answering, that is what the client gets
        compression = self.compression
        held: Message | None = None  # a start held until its body is compressed
        coding = ""

        async def send_with_id(message: Message) -> None:
            nonlocal status, held, coding
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers[HEADER] = request_id
                if compression is not None and (chosen := compression.coding_for(scope, message, headers)):
                    held, coding = message, chosen
                    return
            elif held is not None and compression is not None:
                start, held = held, None
                message = compression.encode(start, message, coding)
                await send(start)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            record_request(scope, status, started)
            if self.access_log is not None:  # while the span is current: the line carries its trace id
                self.access_log.record(scope, status, started, request_id)
            finish_span(span, scope, method, status)
