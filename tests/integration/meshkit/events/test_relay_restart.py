"""Kafka goes away and comes back: the relay backs off without marking anything, then every event arrives;
republished events (a crash between publish and mark) are applied exactly once by the consumer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from harness.events import all_published, eventually, outbox_state, running, started_broker, write_events
from harness.infra import InfraEnv
from harness.kafka import create_topic, event_of, first_occurrences, ids_by_key, read_records
from harness.stores.events import EventsDb, database_url, events_db
from infra.local import LocalKafka, free_port
from meshkit.events.consumers import EventConsumer, Outcome
from meshkit.events.relay import OutboxRelay
from stubs.events.v1 import events_pb2

pytestmark = [pytest.mark.infra, pytest.mark.timeout(300)]

KEYS = ["user-a", "user-b", "user-c", "user-d"]


async def effects_table(edb: EventsDb) -> Table:
    """What the consumer's handler does: one row per application (a unique index would hide repeats)."""
    table = Table(
        f"{edb.prefix}_effects",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("entity_id", String(64), nullable=False),
        Column("event_id", String(36), nullable=False),
    )
    async with edb.db.engine.begin() as connection:
        await connection.run_sync(table.create)
    return table


async def drop(edb: EventsDb, table: Table) -> None:
    async with edb.db.engine.begin() as connection:
        await connection.run_sync(table.drop)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_kafka_stop_and_start_loses_nothing_and_duplicates_apply_once(
    kind: str, infra: InfraEnv, tmp_path: Path
) -> None:
    kafka = LocalKafka(port=free_port(), controller_port=free_port(), data_dir=tmp_path / "k")
    await asyncio.to_thread(kafka.start)
    try:
        await asyncio.to_thread(kafka.wait_ready, 90)
        topic = await create_topic(kafka.bootstrap)
        async with (
            events_db(database_url(kind, tmp_path, infra.database_url), tmp_path) as edb,
            started_broker(kafka.bootstrap, service="relay") as broker,
        ):
            registry = CollectorRegistry()
            relay = OutboxRelay(
                edb.db,
                broker,
                edb.outbox,
                tracer_provider=TracerProvider(),
                registry=registry,
                poll_interval=0.2,
                publish_timeout=2.0,
                max_backoff=1.0,
            )
            async with running(relay):
                # Kafka up: the relay is running and has published some events already.
                written = await write_events(edb, topic, KEYS, per_key=5, wake=relay.wake)
                await eventually(lambda: all_published(edb), timeout=30, what="the first events")

                await asyncio.to_thread(kafka.stop)
                later = await write_events(edb, topic, KEYS, per_key=50, wake=relay.wake)
                await asyncio.sleep(5)  # several rounds fail and back off
                total, published, _ = await outbox_state(edb)
                assert (total, published) == (220, 20)  # nothing marked while Kafka is away
                async with edb.db.read() as session:
                    attempts = await session.scalar(select(func.max(edb.outbox.c.attempts)))
                    error = await session.scalar(select(func.max(edb.outbox.c.last_error)))
                assert attempts is not None
                assert attempts >= 1
                assert error is not None
                failures = registry.get_sample_value(
                    "portico_outbox_publish_failures_total", {"outbox": edb.outbox.name}
                )
                assert failures is not None
                assert failures > 0
                pending = registry.get_sample_value("portico_outbox_pending", {"outbox": edb.outbox.name})
                assert pending == 200

                await asyncio.to_thread(kafka.start)
                await asyncio.to_thread(kafka.wait_ready, 90)
                back = time.monotonic()
                await eventually(lambda: all_published(edb), timeout=60, what="the backlog to drain")
                drained = time.monotonic() - back
                print(f"\n[measure] {kind}: 200 events drained {drained:.2f}s after Kafka was back")

                # A relay that died between publish and mark: the rows are pending again, so republished.
                async with edb.db.write() as session:
                    c = edb.outbox.c
                    await session.execute(edb.outbox.update().where(c.id % 3 == 0).values(published_at=None))
                relay.wake()
                await eventually(lambda: all_published(edb), timeout=30, what="the republish")

            for key in KEYS:
                written[key] += later[key]
            expected = sum(len(ids) for ids in written.values())
            records = await read_records(kafka.bootstrap, topic, until_distinct=expected)
            received = {event_of(r).event_id for r in records}
            assert received == {i for ids in written.values() for i in ids}  # none lost
            assert len(records) > expected  # republished ones arrive twice (at least once)
            by_key = ids_by_key(records)
            assert {key: first_occurrences(ids) for key, ids in by_key.items()} == written

            effects = await effects_table(edb)
            try:
                await _consume_all(
                    edb, kafka.bootstrap, topic, effects, expected, duplicates=len(records) - expected
                )
                async with edb.db.read() as session:
                    rows = (await session.execute(select(effects).order_by(effects.c.id))).all()
                applied = [row.event_id for row in rows]
                assert len(applied) == len(set(applied)) == expected  # each event applied exactly once
                for key, ids in written.items():
                    assert [row.event_id for row in rows if row.entity_id == key] == ids  # in order
            finally:
                await drop(edb, effects)
    finally:
        await asyncio.to_thread(kafka.stop)


async def _consume_all(
    edb: EventsDb, bootstrap: str, topic: str, effects: Table, expected: int, *, duplicates: int
) -> None:
    registry = CollectorRegistry()
    consumer = EventConsumer(edb.db, edb.processed, f"test-{edb.prefix}", registry=registry)

    async def on_updated(session: AsyncSession, event: events_pb2.Event) -> None:
        await session.execute(effects.insert().values(entity_id=event.entity_id, event_id=event.event_id))

    def count(outcome: Outcome) -> float:
        labels = {"group": consumer.group_id, "topic": topic, "outcome": outcome.value}
        return registry.get_sample_value("portico_events_consumed_total", labels) or 0.0

    async def done() -> bool:
        return count(Outcome.APPLIED) == expected and count(Outcome.DUPLICATE) == duplicates

    handlers = {"user.updated": on_updated}
    async with started_broker(
        bootstrap, service="consumer", subscribe=lambda b: consumer.subscribe(b, topic, handlers)
    ):
        await eventually(done, timeout=60, what="every record to be consumed")
