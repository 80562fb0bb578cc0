"""A consumer process SIGKILLed mid-stream, then its group rewound to the start of the topic and every
record delivered again: each event's effect is applied exactly once (the processed-events ledger commits
in the effect's transaction), and every record already applied comes back as a skipped duplicate."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from harness.backends import metric_value
from harness.events import user_event
from harness.infra import InfraEnv
from harness.kafka import create_topic
from harness.kafka_faults import report, rewind_group, sigkill
from harness.processes import Proc, spawn
from infra.procs import free_port

pytestmark = [pytest.mark.infra, pytest.mark.timeout(240)]

EVENTS = 900  # over 30 keys and 3 partitions
KEYS = 30
KILL_AFTER = 300  # applied effects before the SIGKILL


def count(path: Path, sql: str) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=10) as connection:
        try:
            return int(connection.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:  # the tables are not created yet
            return 0


async def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what} not reached in {timeout} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_a_crashed_consumer_redelivered_from_the_start_applies_every_event_once(
    infra: InfraEnv, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    bootstrap = infra.kafka_bootstrap
    topic = await create_topic(bootstrap)
    group = f"fault-redelivery-{uuid.uuid4().hex[:8]}"
    db = tmp_path / "effects.db"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for seq in range(EVENTS):
            key = f"user-{seq % KEYS}"
            event = user_event(key, seq)
            producer_headers = [("content-type", b"application/x-protobuf")]
            await producer.send(topic, event.SerializeToString(), key=key.encode(), headers=producer_headers)
        await producer.flush()
    finally:
        await producer.stop()

    def start() -> tuple[Proc, int]:
        port = free_port()
        args = ["-m", "harness.programs.effects_consumer", bootstrap, topic, group, str(db), str(port)]
        return spawn(f"effects-{port}", args, {}, tmp_path), port

    effects = "SELECT count(*) FROM effects"
    first, _ = start()
    try:
        await wait_for(lambda: count(db, effects) >= KILL_AFTER, 120, f"{KILL_AFTER} effects")
        sigkill(first.popen)
    finally:
        first.terminate()
    applied_before = count(db, effects)
    assert applied_before < EVENTS, "the consumer finished before the crash: the scenario proved nothing"

    rewind_s = await rewind_group(bootstrap, group, topic)
    second, metrics_port = start()
    try:
        started = time.monotonic()
        await wait_for(
            lambda: count(db, "SELECT count(*) FROM fault_processed_events") >= EVENTS, 120, "every event"
        )
        recovery_s = time.monotonic() - started

        def duplicates() -> float:
            return metric_value(metrics_port, "portico_events_consumed_total", {"outcome": "duplicate"})

        # Every record the first process applied is delivered again and skipped by its event id.
        await wait_for(lambda: duplicates() >= applied_before, 60, "the redelivered records")
        skipped = int(duplicates())
        await asyncio.sleep(1.0)  # anything more arriving late would show below
        total = count(db, effects)
        distinct = count(db, "SELECT count(DISTINCT event_id) FROM effects")
    finally:
        second.terminate()
    report(
        record_property,
        "consumer_redelivery",
        events=EVENTS,
        applied_before_kill=applied_before,
        rewind_wait_s=round(rewind_s, 2),
        redelivered_skipped=skipped,
        effects=total,
        distinct_effects=distinct,
        recovery_s=round(recovery_s, 2),
    )
    assert (total, distinct) == (EVENTS, EVENTS)  # every effect exactly once
    # The whole topic came again: each applied record at least once more (a rebalance may add repeats).
    assert skipped >= applied_before
