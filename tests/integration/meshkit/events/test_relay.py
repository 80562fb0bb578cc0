"""The outbox relay against the real Kafka, on SQLite and PostgreSQL: everything written is published once,
in per-key order; two relays on one table neither duplicate nor reorder; a rollback writes nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from harness.events import (
    all_published,
    eventually,
    outbox_state,
    running,
    started_broker,
    user_event,
    write_events,
)
from harness.infra import InfraEnv
from harness.kafka import create_topic, event_of, ids_by_key, read_records
from harness.stores.events import EventsDb, database_url, events_db
from meshkit.events.outbox import Outbox
from meshkit.events.relay import OutboxRelay

pytestmark = [pytest.mark.infra, pytest.mark.timeout(180)]

KINDS = ["sqlite", "postgresql"]
KEYS = ["user-a", "user-b", "user-c", "user-d", "user-e"]


@pytest.mark.parametrize("kind", KINDS)
async def test_the_relay_publishes_everything_once_in_per_key_order(
    kind: str, infra: InfraEnv, tmp_path: Path
) -> None:
    topic = await create_topic(infra.kafka_bootstrap)
    async with (
        events_db(database_url(kind, tmp_path, infra.database_url), tmp_path) as edb,
        started_broker(infra.kafka_bootstrap) as broker,
    ):
        written = await write_events(edb, topic, KEYS, per_key=400)  # 2,000 events, 200 transactions
        total = sum(len(ids) for ids in written.values())
        registry = CollectorRegistry()
        relay = OutboxRelay(
            edb.db, broker, edb.outbox, tracer_provider=TracerProvider(), registry=registry, batch_size=100
        )
        labels = {"outbox": edb.outbox.name, "topic": topic}

        async def drained() -> bool:  # the relay's own metrics: polling the table would slow it down
            # The backlog gauge is observed after a round, so it lags the published counter slightly.
            return registry.get_sample_value("portico_outbox_published_total", labels) == total and (
                registry.get_sample_value("portico_outbox_pending", {"outbox": edb.outbox.name}) == 0
            )

        started = time.monotonic()
        async with running(relay):
            await eventually(drained, timeout=60, interval=0.01, what="the outbox to drain")
        elapsed = time.monotonic() - started
        print(f"\n[measure] relay {kind}: {total} events in {elapsed:.2f}s = {total / elapsed:.0f} events/s")

        assert await outbox_state(edb) == (total, total, 0)  # all marked, each on its first attempt
        records = await read_records(infra.kafka_bootstrap, topic, until_distinct=total)
        assert len(records) == total  # nothing published twice
        assert ids_by_key(records) == written  # per key, in write order
        headers = dict(records[0].headers)
        assert headers["content-type"] == b"application/x-protobuf"
        assert headers["event-type"] == b"user.updated"
        assert headers["traceparent"].startswith(b"00-")
        assert registry.get_sample_value("portico_outbox_pending", {"outbox": edb.outbox.name}) == 0


async def _writer(edb: EventsDb, topic: str, key: str, count: int, outbox: Outbox) -> list[str]:
    """One entity's changes, one transaction each, in order (as a backend serialises one entity)."""
    ids = []
    for seq in range(count):
        async with edb.db.write() as session:
            event = user_event(key, seq)
            await outbox.add(session, topic, event)
            ids.append(event.event_id)
    return ids


@pytest.mark.parametrize("kind", KINDS)
async def test_two_relays_on_one_table_neither_duplicate_nor_reorder(
    kind: str, infra: InfraEnv, tmp_path: Path
) -> None:
    topic = await create_topic(infra.kafka_bootstrap)
    async with (
        events_db(database_url(kind, tmp_path, infra.database_url), tmp_path) as edb,
        started_broker(infra.kafka_bootstrap, service="one") as broker_one,
        started_broker(infra.kafka_bootstrap, service="two") as broker_two,
    ):
        registries = [CollectorRegistry(), CollectorRegistry()]
        relays = [
            OutboxRelay(
                edb.db,
                broker,
                edb.outbox,
                tracer_provider=TracerProvider(),
                registry=registry,
                batch_size=20,  # small rounds: many chances to collide
                poll_interval=0.05,
            )
            for broker, registry in zip((broker_one, broker_two), registries, strict=True)
        ]

        def wake_both() -> None:
            for relay in relays:
                relay.wake()

        outbox = Outbox(edb.outbox, wake=wake_both)
        async with running(relays[0]), running(relays[1]):
            results = await asyncio.gather(*(_writer(edb, topic, key, 60, outbox) for key in KEYS))
            await eventually(lambda: all_published(edb), timeout=60, what="the outbox to drain")
        written = dict(zip(KEYS, results, strict=True))
        total = sum(len(ids) for ids in written.values())

        assert await outbox_state(edb) == (total, total, 0)
        records = await read_records(infra.kafka_bootstrap, topic, until_distinct=total)
        assert len(records) == total  # no event published twice, by either relay
        assert ids_by_key(records) == written
        shares = [
            r.get_sample_value("portico_outbox_published_total", {"outbox": edb.outbox.name, "topic": topic})
            or 0.0
            for r in registries
        ]
        assert sum(shares) == total
        print(f"\n[measure] two relays {kind}: published {shares[0]:.0f} + {shares[1]:.0f}")


@pytest.mark.parametrize("kind", KINDS)
async def test_a_rolled_back_transaction_leaves_nothing_to_publish(
    kind: str, infra: InfraEnv, tmp_path: Path
) -> None:
    topic = await create_topic(infra.kafka_bootstrap)
    async with (
        events_db(database_url(kind, tmp_path, infra.database_url), tmp_path) as edb,
        started_broker(infra.kafka_bootstrap) as broker,
    ):
        wakes: list[None] = []
        outbox = Outbox(edb.outbox, wake=lambda: wakes.append(None))
        rolled_back = user_event("user-a", 0)

        async def failing_change() -> None:
            async with edb.db.write() as session:
                await outbox.add(session, topic, rolled_back)
                raise RuntimeError("the change failed after the event was added")

        with pytest.raises(RuntimeError, match="change failed"):
            await failing_change()
        committed = (await write_events(edb, topic, ["user-b"], per_key=1))["user-b"]

        assert wakes == []
        assert await outbox_state(edb) == (1, 0, 0)
        relay = OutboxRelay(
            edb.db, broker, edb.outbox, tracer_provider=TracerProvider(), registry=CollectorRegistry()
        )
        assert await relay.relay_once() == 1
        records = await read_records(infra.kafka_bootstrap, topic, until_distinct=1)
        assert [event_of(r).event_id for r in records] == committed
