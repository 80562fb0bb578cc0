"""Settings of the users backend: the kit's backend settings under ``PORTICO_USERS_*``."""

from __future__ import annotations

from pydantic import Field

from meshkit.config.base import settings_config
from meshkit.config.events import UserEventsSettings
from meshkit.config.serve import PublishingBackendSettings, ports

PORT, METRICS_PORT = ports("users")


class UsersSettings(PublishingBackendSettings, UserEventsSettings):
    """The users backend has no settings of its own beyond where it listens."""

    model_config = settings_config("users")

    port: int = Field(default=PORT, description="gRPC listen port")
    metrics_port: int = Field(default=METRICS_PORT, description="Prometheus /metrics port")
