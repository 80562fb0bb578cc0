"""Replay a consumer group's dead-letter topic into the topics its records came from.

    python -m meshkit.events.replay --group auth [--topic portico.users.v1] [--dry-run]

Each record of ``portico.dlq.<group>`` is published again to its original topic (the ``x-dlq-topic``
header) with its key (so it lands on the same partition as the entity's other events), its value (the
same event id, so an idempotent consumer applies it at most once) and its headers, minus the
dead-letter ones. A record that is not an event is listed and skipped: replaying it could never succeed.

Progress is the committed offset of the consumer group ``portico.replay.<group>`` on the dead-letter
topic (``portico.replay.<group>.<topic>`` with ``--topic``), committed after the copies are acknowledged:
a second run replays only what was dead-lettered since, and a run that dies half-way replays at most
the last batch again (harmless, by event id). ``--dry-run`` lists what would be replayed (dead-letter
offset, original topic, event id and type, the error that parked it) and writes nothing. The records
present when the run starts are replayed; the run then ends.

Replayed events arrive after newer events of the same entity; the handlers already cope with that,
as they do with any redelivery.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from meshkit.config.events import KafkaSettings
from meshkit.events.consumers import MalformedEvent, parse_event
from meshkit.events.security import PLAINTEXT, KafkaSecurity

__all__ = ["ReplayReport", "Replayed", "main", "partitions_of", "replay"]

_DLQ_HEADER_PREFIX = "x-dlq-"
_FETCH_MS = 500


@dataclass(frozen=True)
class Replayed:
    """One dead-letter record and what the run did (or would do) with it."""

    partition: int
    offset: int
    topic: str  # where it came from
    event_id: str
    event_type: str
    reason: str  # the error type that parked it
    action: str  # "replay", or "skip: <why>"

    def line(self) -> str:
        return (
            f"{self.partition}:{self.offset} {self.action} topic={self.topic} event_id={self.event_id} "
            f"type={self.event_type} reason={self.reason}"
        )


@dataclass
class ReplayReport:
    dead_letter_topic: str
    dry_run: bool
    records: list[Replayed] = field(default_factory=list)

    @property
    def replayed(self) -> int:
        return sum(1 for r in self.records if r.action == "replay")

    @property
    def skipped(self) -> int:
        return len(self.records) - self.replayed


def progress_group(group: str, topic: str | None) -> str:
    """The consumer group whose committed offsets record how far ``group``'s dead letters were replayed."""
    return f"portico.replay.{group}" + (f".{topic}" if topic else "")


def _describe(record: ConsumerRecord[bytes, bytes], only_topic: str | None) -> Replayed:
    headers = {key: value.decode(errors="replace") for key, value in record.headers}
    topic = headers.get("x-dlq-topic", "")
    reason = headers.get("x-dlq-error", "")
    try:
        event = parse_event(record.value or b"")
        event_id, event_type = event.event_id, event.type
    except MalformedEvent:
        event_id = event_type = ""
    if not event_id:
        action = "skip: not an event"
    elif not topic:
        action = "skip: no x-dlq-topic header"
    elif only_topic is not None and topic != only_topic:
        action = "skip: other topic"
    else:
        action = "replay"
    return Replayed(record.partition, record.offset, topic, event_id, event_type, reason, action)


async def partitions_of(bootstrap: str, topic: str, *, security: KafkaSecurity = PLAINTEXT) -> list[int]:
    """The partition ids of ``topic`` (none if it does not exist: asking for all topics creates none)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_kwargs())
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    found = [t for t in described if t["topic"] == topic]
    return sorted(int(p["partition"]) for t in found for p in t["partitions"])


async def replay(
    bootstrap: str,
    group: str,
    *,
    topic: str | None = None,
    dry_run: bool = False,
    on_record: Callable[[Replayed], None] = lambda _: None,
    security: KafkaSecurity = PLAINTEXT,
) -> ReplayReport:
    """Replay (or with ``dry_run`` only list) the records of ``portico.dlq.<group>`` not replayed yet."""
    dead_letters = f"portico.dlq.{group}"
    report = ReplayReport(dead_letters, dry_run)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=progress_group(group, topic),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        **security.client_kwargs(),
    )
    producer: AIOKafkaProducer | None = None
    await consumer.start()
    try:
        partitions = [
            TopicPartition(dead_letters, p)
            for p in await partitions_of(bootstrap, dead_letters, security=security)
        ]
        if not partitions:
            return report  # nothing was ever dead-lettered
        consumer.assign(partitions)  # no group membership: the group only stores the progress
        for tp in partitions:
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        ends = await consumer.end_offsets(partitions)  # the records present now
        if not dry_run:
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **security.client_kwargs()
            )
            await producer.start()
        while pending := [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(*pending, timeout_ms=_FETCH_MS)
            progress: dict[TopicPartition, int] = {}
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    described = _describe(record, topic)
                    if described.action == "replay" and producer is not None:
                        await _republish(producer, record, described.topic)
                    report.records.append(described)
                    on_record(described)
                    progress[tp] = record.offset + 1
            if progress and not dry_run:
                await consumer.commit(progress)  # after the copies were acknowledged
    finally:
        await consumer.stop()
        if producer is not None:
            await producer.stop()
    return report


async def _republish(producer: AIOKafkaProducer, record: ConsumerRecord[bytes, bytes], topic: str) -> None:
    headers = [(key, value) for key, value in record.headers if not key.startswith(_DLQ_HEADER_PREFIX)]
    await producer.send_and_wait(topic, record.value, key=record.key, headers=headers)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meshkit.events.replay",
        description="Copy the records of a consumer group's dead-letter topic back to their topics.",
    )
    parser.add_argument(
        "--group", required=True, help="the consumer group (its topic is portico.dlq.<group>)"
    )
    parser.add_argument("--topic", help="replay only the records that came from this topic")
    parser.add_argument("--dry-run", action="store_true", help="list what would be replayed; write nothing")
    parser.add_argument(
        "--bootstrap",
        default=None,
        help="Kafka bootstrap servers (default: PORTICO_KAFKA_BOOTSTRAP)",
    )
    args = parser.parse_args(argv)
    kafka = KafkaSettings()  # the bootstrap and TLS/SASL settings every Portico process reads

    def show(record: Replayed) -> None:
        print(record.line(), flush=True)

    report = asyncio.run(
        replay(
            args.bootstrap or kafka.kafka_bootstrap,
            args.group,
            topic=args.topic,
            dry_run=args.dry_run,
            on_record=show,
            security=kafka.kafka_security(),
        )
    )
    verb = "would replay" if report.dry_run else "replayed"
    print(f"{report.dead_letter_topic}: {verb} {report.replayed}, skipped {report.skipped}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
