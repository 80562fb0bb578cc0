"""Settings of the broker backend (``PORTICO_BROKER_*``, plus the shared ``PORTICO_*``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from backends.kit.config import BackendSettings


class BrokerSettings(BackendSettings):
    model_config = SettingsConfigDict(env_prefix="PORTICO_BROKER_", extra="ignore", populate_by_name=True)

    port: int = 50054
    metrics_port: int = 9104
