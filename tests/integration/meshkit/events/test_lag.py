"""The consumer-lag gauge against the real Kafka: per-partition lag follows a group's commits and falls to
0 once the kit's consumer has read everything; an unreachable Kafka is counted, not fatal."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession

from harness.events import eventually, started_broker, user_event
from harness.infra import InfraEnv
from harness.kafka import create_topic
from harness.stores.events import events_db
from infra.local import free_port
from meshkit.events.consumers import EventConsumer
from meshkit.events.lag import ConsumerLagMonitor, KafkaOffsets
from stubs.events.v1 import events_pb2

pytestmark = [pytest.mark.infra, pytest.mark.timeout(180)]

PER_PARTITION = {0: 5, 1: 3, 2: 0}


async def produce(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition, count in per_partition.items():
            for seq in range(count):
                value = user_event(f"u-{partition}", seq).SerializeToString()
                await producer.send_and_wait(topic, value, partition=partition)
    finally:
        await producer.stop()


async def commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit ``offsets`` for ``group`` the way a consumer of the group does after handling records."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


def lag_of(registry: CollectorRegistry, group: str, topic: str) -> dict[int, float | None]:
    return {
        partition: registry.get_sample_value(
            "portico_kafka_consumer_lag", {"group": group, "topic": topic, "partition": str(partition)}
        )
        for partition in PER_PARTITION
    }


async def test_lag_follows_commits_and_drops_to_zero_when_consumed(infra: InfraEnv, tmp_path: Path) -> None:
    bootstrap = infra.kafka_bootstrap
    topic = await create_topic(bootstrap, partitions=len(PER_PARTITION))
    group = f"lag-test-{uuid.uuid4().hex[:8]}"
    registry = CollectorRegistry()
    source = KafkaOffsets(bootstrap, client_id="lag-test")
    monitor = ConsumerLagMonitor(source, group, [topic], registry=registry, timeout=10)
    try:
        await produce(bootstrap, topic, PER_PARTITION)
        # Nothing committed yet: the group has every record ahead of it.
        assert await monitor.refresh()
        assert lag_of(registry, group, topic) == {0: 5, 1: 3, 2: 0}

        await commit(bootstrap, group, {TopicPartition(topic, 0): 2, TopicPartition(topic, 1): 3})
        assert await monitor.refresh()
        assert lag_of(registry, group, topic) == {0: 3, 1: 0, 2: 0}

        applied: list[str] = []

        async def on_updated(session: AsyncSession, event: events_pb2.Event) -> None:
            applied.append(event.event_id)

        async def caught_up() -> bool:
            assert await monitor.refresh()
            return lag_of(registry, group, topic) == {0: 0, 1: 0, 2: 0}

        async with events_db(f"sqlite+aiosqlite:///{tmp_path / 'lag.db'}", tmp_path) as edb:
            consumer = EventConsumer(edb.db, edb.processed, group, registry=CollectorRegistry())

            def subscribe(broker: KafkaBroker) -> None:
                consumer.subscribe(broker, topic, {"user.updated": on_updated})

            async with started_broker(bootstrap, service="lag-reader", subscribe=subscribe):
                await eventually(caught_up, timeout=60, interval=0.5, what="the group to catch up")
        assert len(applied) == 3  # the kit's consumer went on from the committed offset: 3 left on p0
    finally:
        await source.close()


async def test_an_unreachable_kafka_is_counted_and_the_clients_closed() -> None:
    registry = CollectorRegistry()
    source = KafkaOffsets(f"127.0.0.1:{free_port()}", client_id="lag-test", timeout=2)
    monitor = ConsumerLagMonitor(source, "nobody", ["portico.users.v1"], registry=registry, timeout=5)
    assert not await monitor.refresh()
    assert not await monitor.refresh()
    errors = registry.get_sample_value("portico_kafka_consumer_lag_errors_total", {"group": "nobody"})
    assert errors == 2
    assert source._admin is None
    assert source._consumer is None
