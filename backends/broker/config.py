"""Settings of the broker backend (``PORTICO_BROKER_*``, plus the mesh-wide ``PORTICO_*`` it reads)."""

from __future__ import annotations

from pydantic import Field

from meshkit.config.base import settings_config
from meshkit.config.serve import BackendSettings, ports

PORT, METRICS_PORT = ports("broker")


class BrokerSettings(BackendSettings):
    """Limits of publishing and subscriptions, and how new topics are created."""

    model_config = settings_config("broker")

    port: int = Field(default=PORT, description="gRPC listen port")
    metrics_port: int = Field(default=METRICS_PORT, description="Prometheus /metrics port")

    # Publishing. Kafka refuses records over ``message.max.bytes`` (1 MiB by default) and the gateway
    # bodies over 1 MiB; half of that leaves room for headers and the batch framing.
    max_message_bytes: int = Field(
        default=512 * 1024,
        gt=0,
        description="Largest message plus key, UTF-8 bytes (RESOURCE_EXHAUSTED beyond)",
    )
    publish_timeout: float = Field(
        default=8.0,
        gt=0,
        description="Seconds a publish may wait for Kafka's acknowledgement (UNAVAILABLE after)",
    )

    # Topics are created by this backend on their first publish, never by Kafka's auto-creation.
    topic_partitions: int = Field(default=3, ge=1, description="Partitions of a newly created topic")
    topic_replication_factor: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Replicas of a newly created topic; unset: 3 (with min.insync.replicas 2) on a cluster of 3 or "
            "more brokers, else as many as there are brokers"
        ),
    )
    topic_retention_ms: int = Field(
        default=7 * 24 * 3600 * 1000, ge=-1, description="retention.ms of a newly created topic (-1: forever)"
    )
    topic_poll_seconds: float = Field(
        default=2.0, gt=0, description="How often a subscription to a topic not created yet looks for it"
    )

    # Subscriptions: one Kafka consumer each, so they are capped, and each buffers a bounded amount.
    max_subscriptions: int = Field(
        default=256, ge=1, description="Open subscriptions per process (RESOURCE_EXHAUSTED beyond)"
    )
    max_subscriptions_per_tenant: int = Field(
        default=64,
        ge=1,
        description="Open subscriptions of one tenant per process (RESOURCE_EXHAUSTED beyond)",
    )
    subscription_fetch_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Most bytes one subscription's consumer fetches ahead"
    )
    subscription_partition_fetch_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Most bytes fetched ahead per partition (one record always fits)",
    )
    subscription_batch: int = Field(
        default=100, ge=1, description="Most records a subscription holds between Kafka and the client"
    )
    end_streams_at_token_expiry: bool = Field(
        default=True, description="End a subscription with UNAUTHENTICATED when its access token expires"
    )
    stream_revocation_check_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How often an open subscription asks whether its token was revoked (logout)",
    )
    stream_partition_check_seconds: float = Field(
        default=30.0,
        gt=0,
        description=(
            "How often an open subscription looks for partitions added to its topic (it then reads them too, "
            "from their beginning)"
        ),
    )
    kafka_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to open a consumer or create a topic before UNAVAILABLE"
    )
