"""The idempotent consumer, through FastStream's in-memory TestKafkaBroker and a real SQLite file:
apply once per group, skip what was applied, record unknown types, skip malformed payloads, roll back a
failing handler so the redelivery applies it, retry a dependency outage for as long as it lasts and
dead-letter only what can never be applied."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.exceptions
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import CollectorRegistry
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from backends.users.events import USERS
from meshkit.db.database import Database
from meshkit.events.consumers import EventConsumer, Handler, Outcome, backoff_delay
from meshkit.events.tables import processed_events_table
from meshkit.failures import Permanent, Transient
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


def failing_handler(setup: Setup, errors: list[Exception]) -> Handler:
    """Raises the next of ``errors`` on each call, then applies the event."""

    async def on_event(session: AsyncSession, event: events_pb2.Event) -> None:
        if errors:
            raise errors.pop(0)
        await session.execute(setup.effects.insert().values(event_id=event.event_id))

    return on_event


async def test_a_dependency_outage_is_retried_past_max_attempts_and_never_dead_lettered(
    setup: Setup,
) -> None:
    event = user_event()
    consumer = EventConsumer(
        setup.db, setup.processed, "g1", registry=setup.registry, retry_delay=0, max_attempts=2
    )
    broker = KafkaBroker()
    outage = [redis.exceptions.ConnectionError("Connection refused") for _ in range(5)]
    consumer.subscribe(broker, TOPIC, {"user.updated": failing_handler(setup, outage)})
    parked: list[str] = []

    @broker.subscriber(consumer.dead_letter_topic)
    async def on_parked(message: KafkaMessage) -> None:
        parked.append(message.body.hex())

    async with TestKafkaBroker(broker) as test_broker:
        for attempt in range(5):  # the redeliveries of one record while Redis is away
            with pytest.raises(redis.exceptions.ConnectionError):
                await test_broker.publish(event.SerializeToString(), TOPIC, headers=HEADERS)
            assert consumer.blocked_seconds(TOPIC) >= 0
            if attempt == 0:
                assert setup.registry.get_sample_value(
                    "portico_events_blocked_seconds", {"group": "g1", "topic": TOPIC}
                ) == pytest.approx(consumer.blocked_seconds(TOPIC), abs=1.0)
        await test_broker.publish(event.SerializeToString(), TOPIC, headers=HEADERS)  # Redis is back
    assert parked == []
    assert await setup.effects_of() == [event.event_id]
    retries = {"group": "g1", "topic": TOPIC, "reason": "redis"}
    assert setup.registry.get_sample_value("portico_events_retries_total", retries) == 5
    assert setup.count(Outcome.APPLIED) == 1
    assert consumer.blocked_seconds(TOPIC) == 0.0  # applied: nothing blocks the partition any more


async def test_a_declared_permanent_error_is_dead_lettered_and_a_declared_transient_one_is_not(
    setup: Setup,
) -> None:
    transient, permanent = user_event(), user_event()
    consumer = EventConsumer(
        setup.db, setup.processed, "g1", registry=setup.registry, retry_delay=0, max_attempts=2
    )
    broker = KafkaBroker()
    errors: dict[str, list[Exception]] = {
        transient.event_id: [Transient("peer warming up")] * 3,
        permanent.event_id: [Permanent("no such tenant")] * 3,
    }

    async def on_event(session: AsyncSession, event: events_pb2.Event) -> None:
        if errors[event.event_id]:
            raise errors[event.event_id].pop(0)
        await session.execute(setup.effects.insert().values(event_id=event.event_id))

    consumer.subscribe(broker, TOPIC, {"user.updated": on_event})
    parked: list[str] = []

    @broker.subscriber(consumer.dead_letter_topic)
    async def on_parked(message: KafkaMessage) -> None:
        parked.append(events_pb2.Event.FromString(message.body).event_id)

    async with TestKafkaBroker(broker) as test_broker:
        for _ in range(3):
            with pytest.raises(Transient):
                await test_broker.publish(transient.SerializeToString(), TOPIC, headers=HEADERS)
        await test_broker.publish(transient.SerializeToString(), TOPIC, headers=HEADERS)
        with pytest.raises(Permanent):
            await test_broker.publish(permanent.SerializeToString(), TOPIC, headers=HEADERS)
        await test_broker.publish(permanent.SerializeToString(), TOPIC, headers=HEADERS)  # 2nd: parked
    assert parked == [permanent.event_id]
    assert await setup.effects_of() == [transient.event_id]
    assert setup.count(Outcome.DEAD_LETTERED) == 1


async def test_closing_the_consumer_interrupts_a_back_off_at_once(setup: Setup) -> None:
    consumer = EventConsumer(
        setup.db, setup.processed, "g1", registry=setup.registry, retry_delay=30, max_backoff=30
    )
    broker = KafkaBroker()
    outage = [OSError("connection refused")]
    consumer.subscribe(broker, TOPIC, {"user.updated": failing_handler(setup, outage)})
    async with TestKafkaBroker(broker) as test_broker:
        publish = asyncio.create_task(
            test_broker.publish(user_event().SerializeToString(), TOPIC, headers=HEADERS)
        )
        await asyncio.sleep(0.3)  # in its back-off now (15 s or more)
        assert not publish.done()
        started = time.monotonic()
        consumer.close()
        with pytest.raises(
            OSError, match="connection refused"
        ):  # not acknowledged: redelivered after the restart
            await asyncio.wait_for(publish, 2)
        assert time.monotonic() - started < 1.0
    assert await setup.effects_of() == []


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 0.5, 1.0), (2, 1.0, 2.0), (4, 4.0, 8.0), (6, 15.0, 30.0), (10_000, 15.0, 30.0)],
)
def test_the_back_off_doubles_up_to_its_cap_with_jitter(attempt: int, low: float, high: float) -> None:
    assert backoff_delay(attempt, 1.0, 30.0, rand=lambda: 0.0) == low
    assert backoff_delay(attempt, 1.0, 30.0, rand=lambda: 1.0) == high
