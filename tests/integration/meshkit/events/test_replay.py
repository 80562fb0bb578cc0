"""Replaying a dead-letter topic on the real Kafka: ``--dry-run`` lists and writes nothing, a replay brings
a parked event back to its topic where the real consumer applies it once, and a second run replays
nothing (its progress is a committed offset)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession

from harness.events import eventually, started_broker, user_event
from harness.infra import InfraEnv
from harness.kafka import create_topic, read_records
from harness.stores.events import database_url, events_db
from meshkit.events.consumers import EventConsumer, Outcome
from meshkit.events.replay import main, partitions_of, progress_group, replay
from meshkit.failures import Permanent
from stubs.events.v1 import events_pb2

pytestmark = [pytest.mark.infra, pytest.mark.timeout(180)]

HEADERS = {"content-type": "application/x-protobuf", "event-type": "user.updated"}


async def end_offset(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def test_replay_brings_a_parked_event_back_once(
    infra: InfraEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap = infra.kafka_bootstrap
    topic = await create_topic(bootstrap, partitions=1)
    parked, other = user_event("u-1", 1), user_event("u-2", 1)
    fixed = asyncio.Event()  # the handler's bug, fixed by a deploy
    applied: list[str] = []
    registry = CollectorRegistry()

    async def on_updated(session: AsyncSession, event: events_pb2.Event) -> None:
        if event.event_id == parked.event_id and not fixed.is_set():
            raise Permanent("this version cannot apply it")
        applied.append(event.event_id)

    def count(outcome: Outcome) -> float:
        labels = {"group": group, "topic": topic, "outcome": outcome.value}
        return registry.get_sample_value("portico_events_consumed_total", labels) or 0.0

    async with events_db(database_url("sqlite", tmp_path, infra.database_url), tmp_path) as edb:
        group = f"test-{edb.prefix}"
        consumer = EventConsumer(
            edb.db, edb.processed, group, registry=registry, retry_delay=0.05, max_attempts=2
        )
        async with (
            started_broker(bootstrap, service="writer") as broker,
            started_broker(
                bootstrap,
                service="reader",
                subscribe=lambda b: consumer.subscribe(b, topic, {"user.updated": on_updated}),
            ),
        ):
            for event in (parked, other):
                await broker.publish(
                    event.SerializeToString(), topic, key=event.event_id.encode(), headers=HEADERS
                )

            async def other_applied() -> bool:
                return applied == [other.event_id] and count(Outcome.DEAD_LETTERED) == 1

            await eventually(
                other_applied, timeout=60, what="the parked event dead-lettered, the next applied"
            )
            topic_end = await end_offset(bootstrap, topic)
            capsys.readouterr()

            # --dry-run: lists the record, writes nothing (no copy, no progress).
            assert (
                await asyncio.to_thread(main, ["--group", group, "--dry-run", "--bootstrap", bootstrap]) == 0
            )
            listed = capsys.readouterr().out.splitlines()
            assert re.match(r"\d+:0 replay ", listed[0])  # partition:offset in the dead-letter topic
            assert f"event_id={parked.event_id}" in listed[0]
            assert f"topic={topic}" in listed[0]
            assert "reason=Permanent" in listed[0]
            assert listed[-1] == f"portico.dlq.{group}: would replay 1, skipped 0"
            assert await end_offset(bootstrap, topic) == topic_end

            fixed.set()
            report = await replay(bootstrap, group)
            assert [(r.event_id, r.action) for r in report.records] == [(parked.event_id, "replay")]

            async def parked_applied() -> bool:
                return parked.event_id in applied

            await eventually(parked_applied, timeout=60, what="the replayed event to be applied")
            assert (await replay(bootstrap, group)).records == []  # progress was committed

            # Replayed again (another progress group): the consumer skips it by its event id.
            assert (await replay(bootstrap, group, topic=topic)).replayed == 1

            async def skipped() -> bool:
                return count(Outcome.DUPLICATE) == 1

            await eventually(skipped, timeout=60, what="the second copy to be skipped")

    assert sorted(applied) == sorted([other.event_id, parked.event_id])  # each applied exactly once
    copies = await read_records(bootstrap, topic, until_distinct=2, settle=0.5)
    replayed = [r for r in copies if r.offset >= topic_end]
    assert [r.key for r in replayed] == [parked.event_id.encode()] * 2  # the key kept
    headers = dict(replayed[0].headers)
    assert headers["content-type"] == b"application/x-protobuf"
    assert not [key for key in headers if key.startswith("x-dlq-")]
    assert progress_group(group, None) == f"portico.replay.{group}"


async def test_replaying_a_group_that_never_dead_lettered_does_nothing(infra: InfraEnv) -> None:
    report = await replay(infra.kafka_bootstrap, "test-never-parked-anything", dry_run=True)
    assert (report.replayed, report.skipped) == (0, 0)
