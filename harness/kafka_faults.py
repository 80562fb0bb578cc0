"""Steps shared by the Kafka fault scenarios: kill a process for real, rewind a consumer group, and report
the measured numbers (one ``FAULT <scenario>: key=value ...`` line, also attached to the test report)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from infra.procs import Popen
from meshkit.events.replay import partitions_of
from stubs.events.v1 import events_pb2


def sigkill(popen: Popen) -> None:
    """SIGKILL the process and its group (no shutdown hook runs), and reap it."""
    with contextlib.suppress(ProcessLookupError):  # it died on its own already
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait(10)


def report(record_property: Callable[[str, object], None], scenario: str, **numbers: object) -> str:
    """Print ``FAULT <scenario>: key=value ...`` (seen with ``-s``) and attach each number to the report."""
    line = f"FAULT {scenario}: " + " ".join(f"{key}={value}" for key, value in numbers.items())
    print(line, flush=True)
    for key, value in numbers.items():
        record_property(key, value)
    return line


async def rewind_group(bootstrap: str, group: str, topic: str, *, timeout: float = 60) -> float:
    """Commit offset 0 on every partition of ``topic`` for ``group``; returns the seconds it took.

    Kafka accepts the commit only once the group has no member left, so a crashed member is waited out
    (its session timeout)."""
    started = time.monotonic()
    partitions = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
    while True:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.commit(dict.fromkeys(partitions, 0))
            return time.monotonic() - started
        except KafkaError:
            if time.monotonic() - started > timeout:
                raise
        finally:
            await consumer.stop()
        await asyncio.sleep(0.5)


@dataclass(frozen=True)
class TopicLayout:
    """Where a topic's partitions live: leader and replica node ids per partition, and its min ISR."""

    leaders: dict[int, int]
    replicas: dict[int, list[int]]
    in_sync: dict[int, list[int]]
    min_insync_replicas: int


async def topic_layout(bootstrap: str, topic: str, *, timeout: float = 60) -> TopicLayout:
    """The layout of ``topic`` once it exists with a leader for every partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:  # the admin client asks a random broker it knows of: a dead one fails the call
                    described = await admin.describe_topics()
                except KafkaError:
                    described = []
                found = [t for t in described if t["topic"] == topic]
                partitions = found[0]["partitions"] if found else []
                if partitions and all(p["leader"] >= 0 for p in partitions):
                    break
                await asyncio.sleep(0.2)
            while True:
                try:
                    configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
                    break
                except KafkaError:
                    await asyncio.sleep(0.2)
    finally:
        await admin.close()
    entries = configs[0].to_object()["resources"][0]["config_entries"]
    min_isr = next(int(e["config_value"]) for e in entries if e["config_names"] == "min.insync.replicas")
    return TopicLayout(
        leaders={p["partition"]: p["leader"] for p in partitions},
        replicas={p["partition"]: sorted(p["replicas"]) for p in partitions},
        in_sync={p["partition"]: sorted(p["isr"]) for p in partitions},
        min_insync_replicas=min_isr,
    )


async def user_created_events(
    bootstrap: str, topic: str, expected: set[str], *, timeout: float
) -> tuple[dict[str, list[str]], float]:
    """Event ids of ``user.created`` per user id, read from the topic's start until every ``expected``
    user has one (then one more second for late duplicates); and the seconds until they all had one."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    started = time.monotonic()
    await consumer.start()
    ids: dict[str, list[str]] = defaultdict(list)
    complete_at: float | None = None
    try:
        while time.monotonic() - started < timeout:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                for record in batch:
                    event = events_pb2.Event.FromString(record.value or b"")
                    if event.type == "user.created":
                        ids[event.entity_id].append(event.event_id)
            if complete_at is None and expected <= ids.keys():
                complete_at = time.monotonic()
            if complete_at is not None and time.monotonic() - complete_at > 1.0:
                return dict(ids), complete_at - started
    finally:
        await consumer.stop()
    missing = len(expected - ids.keys())
    raise AssertionError(f"{missing} of {len(expected)} sign-ups have no user.created after {timeout} s")
