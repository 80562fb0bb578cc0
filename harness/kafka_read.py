"""Read events back from a real Kafka topic in tests (a fresh consumer group, from the beginning)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer

from stubs.events.v1 import events_pb2


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
