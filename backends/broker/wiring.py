"""How the broker backend is made from the kit: its ``BackendSpec`` (run by ``python -m backends.broker``)."""

from __future__ import annotations

from collections.abc import Sequence

from backends.broker.config import BrokerSettings
from backends.broker.directory import TopicDirectory
from backends.broker.kafka_clients import KafkaClients
from backends.broker.metrics import BrokerMetrics
from backends.broker.service import BrokerDeps, MessageService
from backends.broker.subscriptions import SubscriptionSlots
from meshkit.rpc.runtime import BackendSpec, Runtime, Service
from stubs.broker.v1 import broker_pb2, broker_pb2_grpc

# Kafka's own request cap: the largest message plus key, headers and record-batch framing.
REQUEST_OVERHEAD_BYTES = 64 * 1024


def broker_deps(runtime: Runtime[BrokerSettings]) -> BrokerDeps:
    """What the servicer works with; the Kafka clients run in the background while the backend does."""
    settings = runtime.settings
    metrics = BrokerMetrics(runtime.registry)
    clients = KafkaClients(
        settings.kafka_bootstrap,
        client_id="portico-broker",
        timeout=settings.kafka_timeout,
        max_request_bytes=settings.max_message_bytes + REQUEST_OVERHEAD_BYTES,
        security=settings.kafka_security(),
    )
    runtime.run_in_background(clients.run)
    directory = TopicDirectory(
        clients,
        metrics,
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
        retention_ms=settings.topic_retention_ms,
        poll_seconds=settings.topic_poll_seconds,
        timeout=settings.kafka_timeout,
    )
    return BrokerDeps(
        settings=settings,
        clients=clients,
        directory=directory,
        slots=SubscriptionSlots(
            metrics, total=settings.max_subscriptions, per_tenant=settings.max_subscriptions_per_tenant
        ),
        metrics=metrics,
        revocations=runtime.revocations,
    )


def services(runtime: Runtime[BrokerSettings]) -> Sequence[Service]:
    servicer = MessageService(broker_deps(runtime))
    runtime.on_drain(servicer.end_streams)
    return [
        Service.of(
            broker_pb2.DESCRIPTOR,
            "MessageService",
            servicer,
            broker_pb2_grpc.add_MessageServiceServicer_to_server,
        ),
    ]


# Every call publishes to or reads from Kafka: without it the broker cannot serve, so it is unready.
SPEC = BackendSpec("broker", BrokerSettings, services, kafka_required=True)
