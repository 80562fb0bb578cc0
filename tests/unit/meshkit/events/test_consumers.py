"""The idempotent consumer, through FastStream's in-memory TestKafkaBroker and a real SQLite file:
apply once per group, skip what was applied, record unknown types, skip malformed payloads, roll back a
failing handler so the redelivery applies it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import CollectorRegistry
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from backends.users.events import USERS
from meshkit.db.database import Database
from meshkit.events.consumers import EventConsumer, Handler, Outcome
from meshkit.events.tables import processed_events_table
from stubs.events.v1 import events_pb2
from stubs.users.v1 import users_pb2

TOPIC = "portico.users.v1"
HEADERS = {"content-type": "application/x-protobuf"}


@dataclass
class Setup:
    db: Database
    processed: Table
    effects: Table
    registry: CollectorRegistry

    def consumer(self, group: str = "g1") -> EventConsumer:
        return EventConsumer(self.db, self.processed, group, registry=self.registry, retry_delay=0)

    def handler(self, fail: set[str] | None = None) -> Handler:
        """Records one effect row per application, in the consumer's transaction."""

        async def on_event(session: AsyncSession, event: events_pb2.Event) -> None:
            await session.execute(self.effects.insert().values(event_id=event.event_id))
            if event.event_id in (fail or set()):
                raise RuntimeError("downstream failed")

        return on_event

    async def effects_of(self) -> list[str]:
        async with self.db.read() as session:
            return list((await session.execute(select(self.effects.c.event_id))).scalars())

    async def processed_ids(self) -> list[tuple[str, str, str]]:
        c = self.processed.c
        async with self.db.read() as session:
            result = await session.execute(select(c.consumer_group, c.event_id, c.event_type))
            return [(group, event_id, type_) for group, event_id, type_ in result.all()]

    def count(self, outcome: Outcome, group: str = "g1") -> float:
        labels = {"group": group, "topic": TOPIC, "outcome": outcome.value}
        return self.registry.get_sample_value("portico_events_consumed_total", labels) or 0.0


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'consumer.db'}")
    metadata = MetaData()
    processed = processed_events_table(metadata, "unit")
    effects = Table(
        "effects", metadata, Column("id", Integer, primary_key=True), Column("event_id", String(36))
    )
    async with db.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield Setup(db, processed, effects, CollectorRegistry())
    await db.dispose()


def user_event(type: str = "user.updated") -> events_pb2.Event:
    return USERS.event(type, "acme", "u-1", actor=None, entity=users_pb2.User(id="u-1"))


async def test_an_event_delivered_twice_is_applied_once(setup: Setup) -> None:
    broker = KafkaBroker()
    setup.consumer().subscribe(broker, TOPIC, {"user.updated": setup.handler()})
    event = user_event()
    async with TestKafkaBroker(broker) as test_broker:
        for _ in range(2):
            await test_broker.publish(event.SerializeToString(), TOPIC, key=b"u-1", headers=HEADERS)
    assert await setup.effects_of() == [event.event_id]
    assert await setup.processed_ids() == [("g1", event.event_id, "user.updated")]
    assert setup.count(Outcome.APPLIED) == 1
    assert setup.count(Outcome.DUPLICATE) == 1


async def test_each_group_applies_the_event_once(setup: Setup) -> None:
    event = user_event()
    for group in ("auth", "posts"):
        assert await setup.consumer(group).apply(event, {"user.updated": setup.handler()}) is Outcome.APPLIED
        assert (
            await setup.consumer(group).apply(event, {"user.updated": setup.handler()}) is Outcome.DUPLICATE
        )
    assert await setup.effects_of() == [event.event_id, event.event_id]


async def test_an_unknown_type_is_recorded_and_skipped(setup: Setup) -> None:
    broker = KafkaBroker()
    setup.consumer().subscribe(broker, TOPIC, {"user.deleted": setup.handler()})
    event = user_event("user.created")
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(event.SerializeToString(), TOPIC, headers=HEADERS)
    assert await setup.effects_of() == []
    assert await setup.processed_ids() == [("g1", event.event_id, "user.created")]
    assert setup.count(Outcome.UNKNOWN_TYPE) == 1


async def test_a_malformed_payload_is_counted_and_skipped(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    broker = KafkaBroker()
    setup.consumer().subscribe(broker, TOPIC, {"user.updated": setup.handler()})
    good = user_event()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b"\xff\xfe not protobuf", TOPIC, headers=HEADERS)
        await test_broker.publish(events_pb2.Event(type="user.updated").SerializeToString(), TOPIC)
        await test_broker.publish(good.SerializeToString(), TOPIC, headers=HEADERS)
    assert await setup.effects_of() == [good.event_id]  # the partition moved on
    assert setup.count(Outcome.MALFORMED) == 2
    skipped = [r for r in caplog.records if r.getMessage() == "skipping malformed event"]
    assert len(skipped) == 2
    assert all(hasattr(r, "offset") and hasattr(r, "partition") for r in skipped)


async def test_a_failing_handler_rolls_back_so_the_redelivery_applies_it(setup: Setup) -> None:
    event = user_event()
    consumer = setup.consumer()
    broker = KafkaBroker()
    consumer.subscribe(broker, TOPIC, {"user.updated": setup.handler(fail={event.event_id})})
    async with TestKafkaBroker(broker) as test_broker:
        with pytest.raises(RuntimeError, match="downstream failed"):  # NACK_ON_ERROR: redelivered
            await test_broker.publish(event.SerializeToString(), TOPIC, headers=HEADERS)
    assert await setup.effects_of() == []
    assert await setup.processed_ids() == []  # not marked: the next delivery is not a "duplicate"
    assert setup.count(Outcome.FAILED) == 1

    assert await consumer.apply(event, {"user.updated": setup.handler()}) is Outcome.APPLIED
    assert await setup.effects_of() == [event.event_id]


async def test_a_malformed_payload_goes_to_the_dead_letter_topic(setup: Setup) -> None:
    broker = KafkaBroker()
    consumer = setup.consumer()
    consumer.subscribe(broker, TOPIC, {"user.updated": setup.handler()})
    parked: list[tuple[bytes, dict[str, str]]] = []

    @broker.subscriber(consumer.dead_letter_topic)
    async def on_parked(message: KafkaMessage) -> None:
        parked.append((message.body, dict(message.headers)))

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b"\xff\xfe not protobuf", TOPIC, key=b"k-1", headers=HEADERS)
    assert consumer.dead_letter_topic == "portico.dlq.g1"
    ((body, headers),) = parked
    assert body == b"\xff\xfe not protobuf"  # kept as it came: nothing is lost
    assert headers["x-dlq-group"] == "g1"
    assert headers["x-dlq-topic"] == TOPIC
    assert headers["x-dlq-error"] == "MalformedEvent"
    assert headers["content-type"] == HEADERS["content-type"]


async def test_an_event_that_keeps_failing_is_dead_lettered_after_max_attempts(setup: Setup) -> None:
    event = user_event()
    consumer = EventConsumer(
        setup.db, setup.processed, "g1", registry=setup.registry, retry_delay=0, max_attempts=3
    )
    broker = KafkaBroker()
    consumer.subscribe(broker, TOPIC, {"user.updated": setup.handler(fail={event.event_id})})
    parked: list[str] = []

    @broker.subscriber(consumer.dead_letter_topic)
    async def on_parked(message: KafkaMessage) -> None:
        parked.append(dict(message.headers)["x-dlq-error"])

    async with TestKafkaBroker(broker) as test_broker:
        for _ in range(2):  # the redeliveries of one record (same partition and offset)
            with pytest.raises(RuntimeError, match="downstream failed"):
                await test_broker.publish(event.SerializeToString(), TOPIC, headers=HEADERS)
        await test_broker.publish(event.SerializeToString(), TOPIC, headers=HEADERS)  # third: parked
    assert parked == ["RuntimeError"]
    assert setup.count(Outcome.FAILED) == 2
    assert setup.count(Outcome.DEAD_LETTERED) == 1
    assert await setup.processed_ids() == []  # never applied: the dead-letter topic holds it
