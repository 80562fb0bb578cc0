"""What a backend declares and what it is given: :class:`BackendSpec` and :class:`Runtime`.

A backend's ``wiring`` module declares a ``BackendSpec[XSettings]``: its name, its settings class, how to
build its servicers from the runtime and which events it consumes. The kit (:mod:`meshkit.rpc.server`) reads
the settings, opens the shared resources into a ``Runtime[XSettings]`` and hands it to the backend, so
``runtime.settings`` is the backend's own settings class and no entry point checks a type at run time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import grpc
from google.protobuf.descriptor import FileDescriptor
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from prometheus_client import CollectorRegistry

from meshkit.auth.prefetch import Prefetch
from meshkit.auth.revocation import RevocationChecker
from meshkit.config.serve import BackendSettings, ConsumingBackendSettings, PublishingBackendSettings
from meshkit.redis_client import RedisClient
from meshkit.rpc.channels import PEER_OPTIONS, open_channel
from meshkit.rpc.health import Dependency
from observability.telemetry import Telemetry

if TYPE_CHECKING:
    # SQLAlchemy and the event plumbing are imported where a backend with a database uses them (about
    # 20 MiB per process): a backend without one (the broker) never loads them.
    from faststream.kafka import KafkaBroker
    from sqlalchemy import Table

    from meshkit.db.database import Database
    from meshkit.events.consumers import EventConsumer, Handler
    from meshkit.events.outbox import Outbox
    from meshkit.events.topics import TopicCreator

__all__ = [
    "BackendSpec",
    "EventSubscription",
    "NoDatabase",
    "Runtime",
    "Service",
    "consume",
    "no_consumers",
    "open_outbox",
]

S = TypeVar("S", bound=BackendSettings)
# Only a backend whose settings declare the outbox (or the consumers) may build one: functions rather
# than methods, because mypy checks a type variable's bound on an argument but not on ``self``.
Publishing = TypeVar("Publishing", bound=PublishingBackendSettings)
Consuming = TypeVar("Consuming", bound=ConsumingBackendSettings)

Background = Callable[[], Coroutine[Any, Any, None]]


class NoDatabase(RuntimeError):
    """A backend without migrations asked for a database."""


@dataclass(frozen=True)
class Service:
    """One gRPC service to host: its full name (for reflection and health), how to register it, and the
    Redis keys some of its methods read first, by method name (read with the token's revocation marks in
    one round trip: :mod:`meshkit.auth.prefetch`)."""

    full_name: str
    register: Callable[[grpc.aio.Server], None]
    prefetch: Mapping[str, Prefetch] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        file: FileDescriptor,
        name: str,
        servicer: object,
        add: Callable[[Any, grpc.aio.Server], None],
        *,
        prefetch: Mapping[str, Prefetch] | None = None,
    ) -> Service:
        """The service ``name`` of a generated ``*_pb2`` file, registered with its ``add_*_to_server``."""
        descriptor = file.services_by_name[name]
        unknown = set(prefetch or {}) - set(descriptor.methods_by_name)
        if unknown:
            raise ValueError(f"prefetch names methods {name} does not have: {sorted(unknown)}")
        return cls(descriptor.full_name, lambda server: add(servicer, server), dict(prefetch or {}))

    def prefetches(self) -> dict[str, Prefetch]:
        """The declared prefetches by full method path (``/pkg.Service/Method``), as calls name them."""
        return {f"/{self.full_name}/{method}": keys for method, keys in self.prefetch.items()}


@dataclass(frozen=True)
class EventSubscription:
    """Events of ``topic`` a backend applies with ``handlers`` (by event type), once per event for the
    consumer group ``group_id``, remembering applied events in the backend's ``processed`` table."""

    topic: str
    handlers: Mapping[str, Handler]
    processed: Table
    group_id: str


@dataclass
class Runtime(Generic[S]):
    """Shared resources a backend's servicers may use; owned and closed by the kit."""

    name: str
    settings: S
    telemetry: Telemetry
    registry: CollectorRegistry
    redis: RedisClient
    revocations: RevocationChecker  # the same checks the authenticator runs, for long-lived calls
    db: Database | None = None
    peer_credentials: grpc.ChannelCredentials | None = None  # PORTICO_PEER_TLS_*: None is plaintext
    dependencies: list[Dependency] = field(default_factory=list)
    background: list[Background] = field(default_factory=list)
    channels: list[grpc.aio.Channel] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    drains: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # The FastStream broker once ``broker`` built it; ``declared`` is set by the kit when the backend has
    # declared its services and consumers, after which none may be built (it would never be started).
    event_broker: KafkaBroker | None = None
    declared: bool = False
    # Built with the broker: creates the topics the broker subscribes to, dead-letters and relays to.
    topics: TopicCreator | None = None
    subscribed_topics: set[str] = field(default_factory=set)  # created before the broker starts

    @property
    def broker(self) -> KafkaBroker:
        """The FastStream broker that relays outboxes and runs consumers, started by the kit once Kafka
        answers. Built on first use: a backend that does neither (the broker) never imports FastStream."""
        if self.event_broker is None:
            if self.declared:
                raise RuntimeError("ask for the Kafka broker while declaring services and consumers")
            from meshkit.events.broker import build_broker
            from meshkit.events.topics import TopicCreator

            self.event_broker = build_broker(
                self.settings.kafka_bootstrap,
                service=self.name,
                tracer_provider=self.telemetry.tracer_provider,
                registry=self.registry,
                graceful_timeout=self.settings.shutdown_grace,
                security=self.settings.kafka_security(),
            )
            self.topics = TopicCreator(
                self.settings.kafka_bootstrap,
                client_id=f"portico-{self.name}-topics",
                partitions=self.settings.kafka_topic_partitions,
                replication_factor=self.settings.kafka_topic_replication_factor,
                security=self.settings.kafka_security(),
            )
        return self.event_broker

    @property
    def database(self) -> Database:
        """The backend's database, migrated to head; only a spec with ``migrations`` has one."""
        if self.db is None:
            raise NoDatabase(f"the {self.name} backend has no database (its BackendSpec names no migrations)")
        return self.db

    def channel(self, target: str) -> grpc.aio.Channel:
        """A channel to another backend (round robin over the target's SERVING addresses, waiting for a
        peer that is not up yet within each call's deadline), closed on shutdown; over TLS (mTLS) when
        ``PORTICO_PEER_TLS_*`` say so."""
        opened = open_channel(
            target,
            credentials=self.peer_credentials,
            options=PEER_OPTIONS,
            # A CLIENT span per call whose context travels in the metadata: the called backend's span
            # joins this request's trace.
            interceptors=aio_client_interceptors(tracer_provider=self.telemetry.tracer_provider),  # type: ignore[no-untyped-call]
        )
        self.channels.append(opened)
        return opened

    def on_drain(self, drain: Callable[[], Awaitable[None]]) -> None:
        """Call ``drain()`` when shutdown begins, before in-flight calls get their grace: for calls that
        would otherwise never end by themselves, such as live streams."""
        self.drains.append(drain)

    def on_shutdown(self, close: Callable[[], Awaitable[None]]) -> None:
        """Call ``close()`` after the server stopped serving (for clients the servicers own)."""
        self.closers.append(close)

    def run_in_background(self, task: Background) -> None:
        """Run ``task()`` while the server runs (started after Kafka connects, cancelled on shutdown)."""
        self.background.append(task)

    def expire(self, table: Table, column: str, hours: float) -> None:
        """Remove rows of ``table`` whose timestamp ``column`` is older than ``hours``, in the background."""
        from meshkit.events.retention import Retention

        retention = Retention(self.database, table, column, timedelta(hours=hours), self.registry)
        self.run_in_background(retention.run)


def open_outbox(runtime: Runtime[Publishing], table: Table) -> Outbox:
    """The backend's outbox on ``table``, with its relay publishing to Kafka in the background and its
    published rows kept for ``outbox_retention_hours``."""
    from meshkit.events.outbox import Outbox
    from meshkit.events.relay import OutboxRelay

    runtime.expire(table, "published_at", runtime.settings.outbox_retention_hours)
    relay = OutboxRelay(
        runtime.database,
        runtime.broker,
        table,
        tracer_provider=runtime.telemetry.tracer_provider,
        registry=runtime.registry,
        topics=runtime.topics,
    )
    runtime.run_in_background(relay.run)
    return Outbox(table, wake=relay.wake)


def consume(runtime: Runtime[Consuming], subscription: EventSubscription) -> EventConsumer:
    """Apply the events of ``subscription`` idempotently, exporting the group's Kafka lag; applied
    event ids are kept for ``processed_events_retention_hours``. Call it before the broker starts."""
    from meshkit.events.consumers import EventConsumer
    from meshkit.events.lag import ConsumerLagMonitor, KafkaOffsets

    settings = runtime.settings
    runtime.expire(subscription.processed, "processed_at", settings.processed_events_retention_hours)
    consumer = EventConsumer(
        runtime.database, subscription.processed, subscription.group_id, registry=runtime.registry
    )
    consumer.subscribe(runtime.broker, subscription.topic, subscription.handlers)
    runtime.subscribed_topics |= {subscription.topic, consumer.dead_letter_topic}
    monitor = ConsumerLagMonitor(
        KafkaOffsets(
            settings.kafka_bootstrap,
            client_id=f"portico-{runtime.name}-lag",
            security=settings.kafka_security(),
        ),
        consumer.group_id,
        consumer.topics,
        registry=runtime.registry,
        interval=settings.consumer_lag_interval,
    )
    runtime.run_in_background(monitor.run)
    return consumer


def no_consumers(runtime: Runtime[Any]) -> Sequence[EventConsumer]:
    """The consumers of a backend that applies no events."""
    return ()


@dataclass(frozen=True)
class BackendSpec(Generic[S]):
    """What makes one backend: its name, settings class, servicers, event consumers and (optionally) its
    database migrations. ``services`` and ``consumers`` are called once, in that order, before serving."""

    name: str
    settings: Callable[[], S]  # the settings class: read from the environment when the backend starts
    services: Callable[[Runtime[S]], Sequence[Service]]
    consumers: Callable[[Runtime[S]], Sequence[EventConsumer]] = no_consumers  # built with consume()
    migrations: Path | None = None  # Alembic folder; the backend then gets ``runtime.database``
    # Whether the backend cannot serve a call without Kafka (the broker); else Kafka only degrades it.
    kafka_required: bool = False
