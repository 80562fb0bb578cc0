"""Settings of the users backend (``PORTICO_USERS_*``, plus the shared ``PORTICO_*``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from meshkit.config.settings import BackendSettings


class UsersSettings(BackendSettings):
    model_config = SettingsConfigDict(env_prefix="PORTICO_USERS_", extra="ignore", populate_by_name=True)

    port: int = 50051
    metrics_port: int = 9101
