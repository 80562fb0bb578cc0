"""Settings of the posts backend (``PORTICO_POSTS_*``, plus the shared ``PORTICO_*``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from backends.kit.config import BackendSettings


class PostsSettings(BackendSettings):
    model_config = SettingsConfigDict(env_prefix="PORTICO_POSTS_", extra="ignore", populate_by_name=True)

    port: int = 50053
    metrics_port: int = 9103
