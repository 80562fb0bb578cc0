"""Settings of the posts backend (``PORTICO_POSTS_*``, plus the shared ``PORTICO_*``)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from meshkit.config.settings import BackendSettings, run_dir


def _default_blob_store() -> str:
    return str(run_dir() / "posts-blobs")


class PostsSettings(BackendSettings):
    model_config = SettingsConfigDict(env_prefix="PORTICO_POSTS_", extra="ignore", populate_by_name=True)

    port: int = 50053
    metrics_port: int = 9103

    users_target: str = Field(
        default="127.0.0.1:50051",
        validation_alias=AliasChoices("PORTICO_USERS_TARGET"),
        description="users backend, which answers whether an author exists",
    )
    consumer_group: str = Field(
        default="portico-posts",
        min_length=1,
        description="Kafka consumer group of the posts backend's event consumer (one per deployment)",
    )
    users_timeout: float = Field(
        default=2.0, gt=0, le=30, description="Deadline in seconds of the author check against users"
    )
    blob_store_url: str = Field(
        default_factory=_default_blob_store,
        description=(
            "Where images are kept: a directory (or file:// URL), or "
            "s3://bucket/prefix?endpoint_url=…&region=… for an S3-compatible store"
        ),
    )
    orphan_grace_seconds: float = Field(
        default=3600.0, gt=0, description="Age before an unreferenced image blob may be swept"
    )
    orphan_sweep_seconds: float = Field(default=3600.0, gt=0, description="Seconds between orphan sweeps")
    max_image_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1, le=6 * 1024 * 1024, description="Largest image accepted"
    )
    max_image_pixels: int = Field(
        default=40_000_000, ge=1, description="Largest width times height decoded (decompression bombs)"
    )
