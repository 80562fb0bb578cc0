"""Single entry point: configure logs and traces for a process, in the same way everywhere."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.sdk.trace import TracerProvider

from meshkit.config.telemetry import TelemetrySettings
from observability.logs import configure_logging
from observability.tracing import configure_tracing

PORTICO_VERSION = "0.1.0"


@dataclass(frozen=True)
class Telemetry:
    """What a process keeps from its telemetry set-up (flushed on shutdown)."""

    service: str
    tracer_provider: TracerProvider

    def shutdown(self) -> None:
        """Flush pending spans; called once when the process stops."""
        self.tracer_provider.shutdown()


def setup_telemetry(service: str, settings: TelemetrySettings | None = None) -> Telemetry:
    """Configure JSON logs with trace ids and the tracer provider for ``service``."""
    settings = settings or TelemetrySettings()
    configure_logging(service, level=settings.log_level, fmt=settings.log_format)
    provider = configure_tracing(service, PORTICO_VERSION, settings)
    return Telemetry(service=service, tracer_provider=provider)
