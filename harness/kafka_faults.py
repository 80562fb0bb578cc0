"""Steps shared by the Kafka fault scenarios: kill a process for real, rewind a consumer group, and report
the measured numbers (one ``FAULT <scenario>: key=value ...`` line, also attached to the test report)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from infra.procs import Popen
from meshkit.events.replay import partitions_of


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
