"""Settings of the auth backend (``PORTICO_AUTH_*``, plus the shared ``PORTICO_*``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from backends.kit.config import BackendSettings


class AuthSettings(BackendSettings):
    model_config = SettingsConfigDict(env_prefix="PORTICO_AUTH_", extra="ignore", populate_by_name=True)

    port: int = 50052
    metrics_port: int = 9102
