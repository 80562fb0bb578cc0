"""Tracer provider with service resource attributes, ratio sampling and an optional OTLP exporter."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from meshkit.config.telemetry import TelemetrySettings


def configure_tracing(service: str, version: str, settings: TelemetrySettings) -> TracerProvider:
    """Install and return the global tracer provider for this process."""
    provider = build_tracer_provider(service, version, settings)
    trace.set_tracer_provider(provider)
    return provider


def build_tracer_provider(service: str, version: str, settings: TelemetrySettings) -> TracerProvider:
    """The tracer provider ``settings`` describe, not yet installed."""
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service, SERVICE_VERSION: version}),
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
    )
    if settings.otlp_endpoint:
        # Imported lazily: the exporter pulls in a gRPC client nobody needs when tracing stays local.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    return provider
