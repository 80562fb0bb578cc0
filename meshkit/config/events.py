"""The event backbone: Kafka, the outbox and the idempotent consumers (mesh-wide ``PORTICO_*``)."""

from __future__ import annotations

from meshkit.config import defaults
from meshkit.config.base import MeshSettings, env


class KafkaSettings(MeshSettings):
    """The Kafka cluster."""

    kafka_bootstrap: str = env(
        "PORTICO_KAFKA_BOOTSTRAP",
        default=defaults.KAFKA_BOOTSTRAP,
        description="Comma-separated host:port of Kafka brokers to bootstrap from",
    )


class OutboxSettings(MeshSettings):
    """A backend that publishes events through its outbox."""

    outbox_retention_hours: float = env(
        "PORTICO_OUTBOX_RETENTION_HOURS",
        default=168.0,
        gt=0,
        description="Hours a published outbox row is kept (pending rows are kept until published)",
    )


class ConsumerSettings(MeshSettings):
    """A backend that applies other backends' events."""

    processed_events_retention_hours: float = env(
        "PORTICO_PROCESSED_EVENTS_RETENTION_HOURS",
        default=336.0,
        gt=0,
        description="Hours an applied event id is remembered; keep it above the topics' retention",
    )
    consumer_lag_interval: float = env(
        "PORTICO_CONSUMER_LAG_INTERVAL",
        default=10.0,
        gt=0,
        description="Seconds between refreshes of the event consumers' Kafka lag gauge",
    )
