"""The gateway's SERVER span per request (continuing W3C traceparent) and its trace exemplars on /metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.testclient import TestClient

from gateway.app import create_app
from harness.gateway import offline_settings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@dataclass
class Traced:
    client: TestClient
    exporter: InMemorySpanExporter

    def server_spans(self) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


@pytest.fixture
def traced() -> Iterator[Traced]:
    settings = offline_settings(
        ready_timeout=0.3,
    )
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with TestClient(create_app(settings, tracer_provider=provider)) as client:
        yield Traced(client, exporter)


def test_a_request_continues_the_callers_trace_in_a_server_span(traced: Traced) -> None:
    response = traced.client.get("/health", headers={"traceparent": TRACEPARENT, "User-Agent": "probe/1"})
    assert response.status_code == 200
    [span] = traced.server_spans()
    assert span.name == "GET /health"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert span.parent.is_remote
    attributes = dict(span.attributes or {})
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.route"] == "/health"
    assert attributes["url.path"] == "/health"
    assert attributes["url.scheme"] == "http"
    assert attributes["http.response.status_code"] == 200
    assert attributes["user_agent.original"] == "probe/1"
    assert span.status.status_code is StatusCode.UNSET


def test_the_span_is_named_by_route_template_never_the_raw_path(traced: Traced) -> None:
    response = traced.client.get("/api/v1/users/0b7c9a4e-5d1f-4c1e-9a7b-3f2e1d0c9b8a")
    assert response.status_code == 401  # no token; the route was matched first
    [span] = traced.server_spans()
    assert span.name == "GET /api/v1/users/{user_id}"
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/api/v1/users/{user_id}"
    assert span.attributes["http.response.status_code"] == 401
    assert span.status.status_code is StatusCode.UNSET  # a client error is not the server's


def test_a_new_trace_starts_without_traceparent_and_a_5xx_is_an_error(traced: Traced) -> None:
    async def down() -> bool:
        return False

    traced.client.app_state["probes"] = {"routes": down}  # no route table: /ready answers 503
    assert traced.client.get("/ready").status_code == 503
    [span] = traced.server_spans()
    assert span.name == "GET /ready"
    assert span.parent is None
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 503


def test_an_unmatched_path_keeps_the_method_as_span_name(traced: Traced) -> None:
    assert traced.client.get("/no/such/route").status_code == 404
    [span] = traced.server_spans()
    assert span.name == "GET"
    assert span.attributes is not None
    assert "http.route" not in span.attributes


def test_request_durations_carry_the_trace_id_as_an_exemplar_in_openmetrics(traced: Traced) -> None:
    traced.client.get("/health", headers={"traceparent": TRACEPARENT})
    [span] = traced.server_spans()
    span_id = format(span.context.span_id, "016x")

    scraped = traced.client.get("/metrics", headers={"Accept": OPENMETRICS})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("application/openmetrics-text")
    assert scraped.text.rstrip().endswith("# EOF")
    exemplars = re.findall(
        r'^portico_gateway_request_duration_seconds_bucket\{[^}]*route="/health"[^}]*\} \S+ '
        r'# \{span_id="([0-9a-f]{16})",trace_id="([0-9a-f]{32})"\}',
        scraped.text,
        re.MULTILINE,
    )
    assert (span_id, TRACE_ID) in exemplars


def test_metrics_stay_in_the_classic_text_format_by_default(traced: Traced) -> None:
    traced.client.get("/health", headers={"traceparent": TRACEPARENT})
    scraped = traced.client.get("/metrics")
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "portico_gateway_request_duration_seconds_bucket" in scraped.text
    assert TRACE_ID not in scraped.text  # exemplars exist only in OpenMetrics


def test_an_unsampled_trace_gives_no_span_and_no_exemplar(traced: Traced) -> None:
    unsampled = f"00-{TRACE_ID}-{PARENT_ID}-00"  # the caller decided not to sample (parent-based sampler)
    assert traced.client.get("/health", headers={"traceparent": unsampled}).status_code == 200
    assert traced.server_spans() == []
    scraped = traced.client.get("/metrics", headers={"Accept": OPENMETRICS})
    assert 'portico_gateway_requests_total{method="GET",route="/health",status="200"} 1.0' in scraped.text
    assert TRACE_ID not in scraped.text
