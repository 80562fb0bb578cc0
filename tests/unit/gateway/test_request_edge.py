"""The outermost layer on its own: an exception that escapes the app ends the server span as an error
with the exception recorded, the span is no longer current afterwards, and an answer carries the
request id."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from starlette.types import Message, Receive, Scope, Send

from gateway.request_edge import RequestEdgeMiddleware
from gateway.request_id import new_request_id


def _scope() -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/things",
        "headers": [(b"x-request-id", b"req-1")],
        "state": {},
    }


async def _receive() -> Message:
    return {"type": "http.request", "body": b""}


def _edge(app: object) -> tuple[RequestEdgeMiddleware, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return RequestEdgeMiddleware(app, tracer_provider=provider), exporter  # type: ignore[arg-type]


async def test_an_escaping_exception_ends_the_span_as_an_error() -> None:
    async def crash(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    edge, exporter = _edge(crash)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(RuntimeError):
        await edge(_scope(), _receive, send)
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "RuntimeError: boom"
    assert [event.name for event in span.events] == ["exception"]
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 500
    assert not trace.get_current_span().get_span_context().is_valid  # detached


async def test_an_answer_carries_the_request_id_and_its_status() -> None:
    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        assert trace.get_current_span().get_span_context().is_valid  # the span is current inside
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    edge, exporter = _edge(ok)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await edge(_scope(), _receive, send)
    assert (b"x-request-id", b"req-1") in sent[0]["headers"]
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 204


def test_a_generated_request_id_is_a_version_4_uuid() -> None:
    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, value)
