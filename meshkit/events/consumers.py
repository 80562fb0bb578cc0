"""Idempotent event consumers on FastStream subscribers: each event is applied once per consumer group.

Delivery is at least once, so an event may arrive again (a relay republished it, a rebalance replayed
it). Applying it is ONE write transaction: insert ``(group, event_id)`` into the processed-events table
(an existing row means it was applied: skip), run the handler for its type, commit. The Kafka offset is
committed only after that (``AckPolicy.NACK_ON_ERROR``: a failing handler seeks back and is retried).

Traced: FastStream's CONSUMER span continues the producer's trace (its ``traceparent`` header), and
applying the event is a child span that also links to that producing span.

Forward compatible: a type without a handler is recorded and skipped. Nothing wedges a partition and
nothing is lost: a payload that is not an event, and an event whose handler failed ``max_attempts``
times in a row, are copied to the group's dead-letter topic ``portico.dlq.<group>`` (with where they
came from and the error's type in headers), counted and logged, then the partition moves on. If even
that publish fails, the record is redelivered as any failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from google.protobuf.message import DecodeError
from opentelemetry import propagate, trace
from opentelemetry.trace import Link
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.db.database import Database, dialect_insert
from meshkit.registries import per_registry
from stubs.events.v1 import events_pb2

__all__ = ["EventConsumer", "Handler", "MalformedEvent", "Outcome", "parse_event"]

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)  # a proxy: spans go to the provider the process installs

Handler = Callable[[AsyncSession, events_pb2.Event], Awaitable[None]]


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # applied before: at-least-once delivery brought it again
    UNKNOWN_TYPE = "unknown_type"  # recorded, no handler (a newer producer)
    MALFORMED = "malformed"  # not an event: dead-lettered
    FAILED = "failed"  # the handler raised; redelivered
    DEAD_LETTERED = "dead_lettered"  # the handler failed max_attempts times: dead-lettered


class MalformedEvent(ValueError):
    """A record value that is not a usable ``events.v1.Event``."""


def parse_event(payload: bytes) -> events_pb2.Event:
    """The envelope in ``payload``; :class:`MalformedEvent` when it is not one."""
    try:
        event = events_pb2.Event.FromString(payload)
    except DecodeError as exc:
        raise MalformedEvent(f"not an events.v1.Event: {exc}") from exc
    if not event.event_id or not event.type:
        raise MalformedEvent("event without event_id or type")
    return event


@per_registry
def _consumed_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "portico_events_consumed_total",
        "Events a consumer group received, by outcome.",
        ("group", "topic", "outcome"),
        registry=registry,
    )


class EventConsumer:
    """Applies events to one backend's database, once per ``group_id``."""

    def __init__(
        self,
        db: Database,
        processed_table: Table,
        group_id: str,
        *,
        registry: CollectorRegistry,
        retry_delay: float = 1.0,
        max_attempts: int = 5,
    ) -> None:
        self._db = db
        self._table = processed_table
        self.group_id = group_id
        self._consumed = _consumed_counter(registry)
        self._retry_delay = retry_delay
        self._max_attempts = max_attempts
        # Failed deliveries of the record each partition is stuck on (one per partition at most).
        self._attempts: dict[tuple[str, int, int], int] = {}
        self._broker: KafkaBroker | None = None
        self.topics: list[str] = []  # subscribed so far; the lag monitor watches them
        self._insert = dialect_insert(db.dialect, processed_table).on_conflict_do_nothing()

    def subscribe(
        self, broker: KafkaBroker, topic: str, handlers: Mapping[str, Handler]
    ) -> DefaultSubscriber:
        """Register a subscriber of ``topic`` applying events with ``handlers`` (by event type).

        Call it before ``broker.start()``; a subscriber added to a running broker must be started itself.
        """
        handlers = dict(handlers)
        self.topics.append(topic)
        self._broker = broker

        async def on_message(message: KafkaMessage) -> None:
            await self.on_record(topic, message, handlers)

        subscriber = broker.subscriber(
            topic,
            group_id=self.group_id,
            ack_policy=AckPolicy.NACK_ON_ERROR,  # commit after handling; seek back on error
            auto_offset_reset="earliest",
            title=f"{self.group_id}:{topic}",
        )
        subscriber(on_message)
        return subscriber

    async def on_record(self, topic: str, message: KafkaMessage, handlers: Mapping[str, Handler]) -> None:
        """Handle one Kafka record (the subscriber's body; public for tests)."""
        record = message.raw_message
        where = (topic, int(getattr(record, "partition", -1)), int(getattr(record, "offset", -1)))
        try:
            event = parse_event(message.body)
        except MalformedEvent as exc:
            await self._dead_letter(message, where, exc)
            log.error(
                "skipping malformed event",
                extra={
                    "group": self.group_id,
                    "topic": topic,
                    "partition": where[1],
                    "offset": where[2],
                    "error": str(exc),
                    "dead_letter_topic": self.dead_letter_topic,
                },
            )
            self._count(topic, Outcome.MALFORMED)
            return
        producer = trace.get_current_span(propagate.extract(message.headers)).get_span_context()
        try:
            with _tracer.start_as_current_span(
                f"apply {event.type}",
                links=[Link(producer)] if producer.is_valid else None,
                attributes={
                    "messaging.consumer.group.name": self.group_id,
                    "messaging.destination.name": topic,
                    "messaging.message.id": event.event_id,
                    "portico.event.type": event.type,
                },
            ) as span:
                outcome = await self.apply(event, handlers)
                span.set_attribute("portico.event.outcome", outcome.value)
        except Exception as exc:
            attempts = self._attempts.get(where, 0) + 1
            context = {"group": self.group_id, "event_id": event.event_id, "event_type": event.type}
            if attempts >= self._max_attempts:
                await self._dead_letter(message, where, exc)
                self._attempts.pop(where, None)
                log.exception(
                    "event handler failed too often; dead-lettered",
                    extra={**context, "attempts": attempts, "dead_letter_topic": self.dead_letter_topic},
                )
                self._count(topic, Outcome.DEAD_LETTERED)
                return
            self._attempts[where] = attempts
            log.exception(
                "event handler failed; will be redelivered", extra={**context, "attempts": attempts}
            )
            self._count(topic, Outcome.FAILED)
            await asyncio.sleep(self._retry_delay)  # don't spin on a failing dependency
            raise
        self._attempts.pop(where, None)
        self._count(topic, outcome)

    @property
    def dead_letter_topic(self) -> str:
        return f"portico.dlq.{self.group_id}"

    async def _dead_letter(
        self, message: KafkaMessage, where: tuple[str, int, int], error: Exception
    ) -> None:
        """Copy the record to the dead-letter topic; raises (so it is redelivered) if that fails."""
        if self._broker is None:
            raise RuntimeError("no broker to dead-letter to: subscribe() was not called") from error
        topic, partition, offset = where
        headers = {
            **{k: v for k, v in message.headers.items() if isinstance(v, str)},
            "x-dlq-group": self.group_id,
            "x-dlq-topic": topic,
            "x-dlq-partition": str(partition),
            "x-dlq-offset": str(offset),
            # The type only: an exception's text may quote the data it choked on.
            "x-dlq-error": type(error).__name__,
        }
        record = message.raw_message
        key = getattr(record, "key", None)
        await self._broker.publish(message.body, self.dead_letter_topic, key=key, headers=headers)

    async def apply(self, event: events_pb2.Event, handlers: Mapping[str, Handler]) -> Outcome:
        """Apply ``event`` unless this group already did, in one transaction with the processed row."""
        handler = handlers.get(event.type)
        async with self._db.write() as session:
            inserted = await session.execute(
                self._insert.values(
                    consumer_group=self.group_id,
                    event_id=event.event_id,
                    event_type=event.type,
                    processed_at=datetime.now(UTC),
                )
            )
            if inserted.rowcount == 0:  # type: ignore[attr-defined]
                return Outcome.DUPLICATE
            if handler is None:
                log.info(
                    "no handler for event type; recorded and skipped",
                    extra={"group": self.group_id, "event_type": event.type, "event_id": event.event_id},
                )
                return Outcome.UNKNOWN_TYPE
            await handler(session, event)
        return Outcome.APPLIED

    def _count(self, topic: str, outcome: Outcome) -> None:
        self._consumed.labels(self.group_id, topic, outcome.value).inc()
