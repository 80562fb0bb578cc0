"""The one telemetry set-up every process uses: resource attributes, sampling and the OTLP exporter
(the provider is built, not installed, so the test process keeps no global one)."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from meshkit.config.telemetry import TelemetrySettings
from observability.telemetry import PORTICO_VERSION
from observability.tracing import build_tracer_provider


def exporters(provider: TracerProvider) -> list[object]:
    processors = provider._active_span_processor._span_processors  # the SDK keeps no public list
    return [p.span_exporter for p in processors if isinstance(p, BatchSpanProcessor)]


def test_the_service_names_itself_and_its_version() -> None:
    provider = build_tracer_provider("portico-test", PORTICO_VERSION, TelemetrySettings())
    assert provider.resource.attributes[SERVICE_NAME] == "portico-test"
    assert provider.resource.attributes[SERVICE_VERSION] == PORTICO_VERSION
    provider.shutdown()


def test_sampling_follows_the_configured_ratio() -> None:
    never = build_tracer_provider("portico-test", PORTICO_VERSION, TelemetrySettings(trace_sample_ratio=0.0))
    always = build_tracer_provider("portico-test", PORTICO_VERSION, TelemetrySettings(trace_sample_ratio=1.0))
    assert not never.get_tracer("t").start_span("root").get_span_context().trace_flags.sampled
    assert always.get_tracer("t").start_span("root").get_span_context().trace_flags.sampled
    never.shutdown()
    always.shutdown()


def test_spans_are_exported_over_otlp_only_when_an_endpoint_is_set() -> None:
    local = build_tracer_provider("portico-test", PORTICO_VERSION, TelemetrySettings())
    assert exporters(local) == []
    remote = build_tracer_provider(
        "portico-test", PORTICO_VERSION, TelemetrySettings(otlp_endpoint="http://127.0.0.1:4317")
    )
    assert [type(e) for e in exporters(remote)] == [OTLPSpanExporter]
    local.shutdown()
    remote.shutdown()
