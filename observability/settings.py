"""Telemetry configuration shared by the gateway and every backend (``PORTICO_`` environment variables)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TelemetrySettings(BaseSettings):
    """How a process reports itself; the defaults suit a developer machine."""

    model_config = SettingsConfigDict(env_prefix="PORTICO_", extra="ignore")

    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/gRPC collector address; traces are exported only when set"
    )
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0, description="Head sampling ratio")
    log_level: str = Field(default="INFO", description="Root log level")
    log_format: Literal["json", "text"] = Field(
        default="json", description="json for machines, text for eyes"
    )
