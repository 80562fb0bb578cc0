"""Kafka helpers for the event tests: a throw-away topic with several partitions, and reading events back
(every record of a topic, or the first matching events through a fresh consumer group)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stubs.events.v1 import events_pb2

PARTITIONS = 3  # several partitions, so per-key order is a real property and not a side effect of one


async def create_topic(bootstrap: str, partitions: int = PARTITIONS) -> str:
    """A new topic with a unique name (tests never share topics with each other or the mesh)."""
    name = f"portico.test.events.{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def read_records(
    bootstrap: str, topic: str, *, until_distinct: int, timeout: float = 60.0, settle: float = 1.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from the start, once ``until_distinct`` event ids arrived (then ``settle``
    more seconds, to catch duplicates that follow)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    settled_at: float | None = None
    try:
        while time.monotonic() < deadline:
            if settled_at is not None and time.monotonic() >= settled_at:
                break
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                for record in batch:
                    records.append(record)
                    seen.add(event_of(record).event_id)
            if settled_at is None and len(seen) >= until_distinct:
                settled_at = time.monotonic() + settle
    finally:
        await consumer.stop()
    return records


def event_of(record: ConsumerRecord[bytes, bytes]) -> events_pb2.Event:
    assert record.value is not None
    return events_pb2.Event.FromString(record.value)


def ids_by_key(records: list[ConsumerRecord[bytes, bytes]]) -> dict[str, list[str]]:
    """Event ids per record key, in log order (one partition per key, so this is the delivery order)."""
    by_key: dict[str, list[str]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert record.key is not None
        by_key[record.key.decode()].append(event_of(record).event_id)
    return dict(by_key)


def first_occurrences(ids: list[str]) -> list[str]:
    """``ids`` without repeats, in first-seen order: what an idempotent consumer applies."""
    return list(dict.fromkeys(ids))


async def read_topic(
    bootstrap: str,
    topic: str,
    predicate: Callable[[events_pb2.Event], bool],
    *,
    want: int,
    raw: bool = False,
    timeout: float = 30.0,
) -> list[Any]:
    """The first ``want`` events matching ``predicate``: parsed, or (``raw``) their value and header bytes."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"test-{uuid.uuid4().hex}", auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while len(found) < want:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        event = events_pb2.Event.FromString(record.value)
                        if predicate(event):
                            headers = b"".join(k.encode() + b"=" + v for k, v in record.headers)
                            found.append(record.value + (record.key or b"") + headers if raw else event)
    finally:
        await consumer.stop()
    return found
