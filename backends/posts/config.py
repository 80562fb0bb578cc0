"""Settings of the posts backend (``PORTICO_POSTS_*``, plus the mesh-wide ``PORTICO_*`` it reads)."""

from __future__ import annotations

from pydantic import Field

from meshkit.config.base import settings_config
from meshkit.config.defaults import MAX_IMAGE_BYTES, MAX_IMAGE_BYTES_CEILING, MAX_IMAGE_PIXELS
from meshkit.config.events import UserEventsSettings
from meshkit.config.peers import UsersPeer
from meshkit.config.serve import ConsumingBackendSettings, ports
from meshkit.config.stores import run_dir

PORT, METRICS_PORT = ports("posts")


def _default_blob_store() -> str:
    """``posts-blobs`` in the run directory."""
    return str(run_dir() / "posts-blobs")


class PostsSettings(ConsumingBackendSettings, UsersPeer, UserEventsSettings):
    """Images (where they are kept and how large they may be) and the author check against users."""

    model_config = settings_config("posts")

    port: int = Field(default=PORT, description="gRPC listen port")
    metrics_port: int = Field(default=METRICS_PORT, description="Prometheus /metrics port")

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
        default=3600.0,
        gt=0,
        description="Seconds an unreferenced image blob is kept before a sweep may remove it",
    )
    orphan_sweep_seconds: float = Field(
        default=3600.0, gt=0, description="Seconds between sweeps of unreferenced image blobs"
    )
    max_image_bytes: int = Field(
        default=MAX_IMAGE_BYTES,
        ge=1,
        le=MAX_IMAGE_BYTES_CEILING,
        description="Largest image accepted in bytes (RESOURCE_EXHAUSTED beyond)",
    )
    max_image_pixels: int = Field(
        default=MAX_IMAGE_PIXELS, ge=1, description="Largest width times height decoded (decompression bombs)"
    )
