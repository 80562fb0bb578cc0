"""How a process reports itself: traces, logs (mesh-wide ``PORTICO_*``); the defaults suit a laptop."""

from __future__ import annotations

from typing import Literal

from meshkit.config.base import MeshSettings, env


class TelemetrySettings(MeshSettings):
    """Tracing and logging, the same for the gateway and every backend."""

    otlp_endpoint: str | None = env(
        "PORTICO_OTLP_ENDPOINT",
        default=None,
        description="OTLP/gRPC collector address; traces are exported only when set",
    )
    trace_sample_ratio: float = env(
        "PORTICO_TRACE_SAMPLE_RATIO",
        default=1.0,
        ge=0.0,
        le=1.0,
        description="Fraction of new traces recorded (head sampling); calls inside a trace follow it",
    )
    log_level: str = env("PORTICO_LOG_LEVEL", default="INFO", description="Root log level")
    log_format: Literal["json", "text"] = env(
        "PORTICO_LOG_FORMAT", default="json", description="Log lines as json (for machines) or text"
    )
