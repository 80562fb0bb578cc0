"""The event backbone: Kafka, the outbox and the idempotent consumers (mesh-wide ``PORTICO_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr, model_validator

from meshkit.config import defaults
from meshkit.config.base import MeshSettings, env
from meshkit.events.security import KafkaSecurity


class KafkaSettings(MeshSettings):
    """The Kafka cluster."""

    kafka_bootstrap: str = env(
        "PORTICO_KAFKA_BOOTSTRAP",
        default=defaults.KAFKA_BOOTSTRAP,
        description="Comma-separated host:port of Kafka brokers to bootstrap from",
    )
    kafka_topic_partitions: int = env(
        "PORTICO_KAFKA_TOPIC_PARTITIONS",
        default=3,
        ge=1,
        description="Partitions of an event topic the mesh creates (one that exists is left as it is)",
    )
    kafka_topic_replication_factor: int | None = env(
        "PORTICO_KAFKA_TOPIC_REPLICATION_FACTOR",
        default=None,
        ge=1,
        description=(
            "Replicas of an event topic the mesh creates; unset: 3 with min.insync.replicas 2 on a cluster "
            "of 3 or more brokers, else one per broker"
        ),
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL"] = env(
        "PORTICO_KAFKA_SECURITY_PROTOCOL",
        default="PLAINTEXT",
        description="How every Kafka client connects: PLAINTEXT, SSL (TLS) or SASL_SSL (SCRAM over TLS)",
    )
    kafka_ca_file: Path | None = env(
        "PORTICO_KAFKA_CA_FILE",
        default=None,
        description="PEM CA bundle that signed the brokers' certificates (unset: the system's CAs)",
    )
    kafka_cert_file: Path | None = env(
        "PORTICO_KAFKA_CERT_FILE",
        default=None,
        description="PEM client certificate, for brokers that require one (with PORTICO_KAFKA_KEY_FILE)",
    )
    kafka_key_file: Path | None = env(
        "PORTICO_KAFKA_KEY_FILE", default=None, description="PEM private key of the Kafka client certificate"
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = env(
        "PORTICO_KAFKA_SASL_MECHANISM",
        default="SCRAM-SHA-512",
        description="SCRAM mechanism of SASL_SSL",
    )
    kafka_sasl_username: str | None = env(
        "PORTICO_KAFKA_SASL_USERNAME", default=None, description="SCRAM user of SASL_SSL"
    )
    kafka_sasl_password: SecretStr | None = env(
        "PORTICO_KAFKA_SASL_PASSWORD", default=None, description="SCRAM password of SASL_SSL"
    )

    @model_validator(mode="after")
    def _security_is_complete(self) -> KafkaSettings:
        self.kafka_security()  # raises (a ValueError) at start, not at the first connection
        return self

    def kafka_security(self) -> KafkaSecurity:
        """What every Kafka client of this process passes (:mod:`meshkit.events.security`)."""
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            ca_file=self.kafka_ca_file,
            cert_file=self.kafka_cert_file,
            key_file=self.kafka_key_file,
            mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username,
            password=self.kafka_sasl_password,
        )


class OutboxSettings(MeshSettings):
    """A backend that publishes events through its outbox."""

    outbox_retention_hours: float = env(
        "PORTICO_OUTBOX_RETENTION_HOURS",
        default=168.0,
        gt=0,
        description="Hours a published outbox row is kept (pending rows are kept until published)",
    )


class UserEventsSettings(MeshSettings):
    """A backend that publishes or consumes the user events: they must agree on the topic."""

    users_topic: str = env(
        "PORTICO_USER_EVENTS_TOPIC",
        "KAFKA_USER_TOPIC",
        default="portico.users.v1",
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description=("Kafka topic of the user events; set it alike for users, auth and posts"),
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
