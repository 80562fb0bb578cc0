"""Idempotent event consumers on FastStream subscribers: each event is applied once per consumer group.

Delivery is at least once, so an event may arrive again (a relay republished it, a rebalance replayed
it). Applying it is ONE write transaction: insert ``(group, event_id)`` into the processed-events table
(an existing row means it was applied: skip), run the handler for its type, commit. The Kafka offset is
committed only after that (``AckPolicy.NACK_ON_ERROR``: a failing handler seeks back and is retried).

Traced: FastStream's CONSUMER span continues the producer's trace (its ``traceparent`` header), and
applying the event is a child span that also links to that producing span.

Forward compatible: a type without a handler is recorded and skipped.

A failing handler never costs a valid event and never wedges a partition behind a bad one. The failure is
classified (:func:`meshkit.failures.classify`): a dependency that blinked (Redis, the database,
Kafka, a peer backend unavailable) is retried with capped exponential back-off and jitter for as long as
it takes — the partition waits, no offset is committed past the record, and the wait is counted
(``portico_events_retries_total``) and exposed (``portico_events_blocked_seconds``, alerted). Only a
payload that is not an event, or an event whose handler failed with a non-transient error
``max_attempts`` times, is copied to the group's dead-letter topic ``portico.dlq.<group>`` (with where it
came from and the error's type in headers), counted and logged; then the partition moves on, and
``python -m meshkit.events.replay`` can bring it back. If even that publish fails, the record is
redelivered as any failure. Stopping the broker interrupts a back-off at once (the record is redelivered
after the restart, since its offset was not committed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from google.protobuf.message import DecodeError
from opentelemetry import propagate, trace
from opentelemetry.trace import Link
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.db.database import Database, dialect_insert
from meshkit.failures import Failure, classify
from meshkit.registries import per_registry
from stubs.events.v1 import events_pb2

__all__ = ["EventConsumer", "Handler", "MalformedEvent", "Outcome", "backoff_delay", "parse_event"]

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)  # a proxy: spans go to the provider the process installs

Handler = Callable[[AsyncSession, events_pb2.Event], Awaitable[None]]


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # applied before: at-least-once delivery brought it again
    UNKNOWN_TYPE = "unknown_type"  # recorded, no handler (a newer producer)
    MALFORMED = "malformed"  # not an event: dead-lettered
    FAILED = "failed"  # the handler raised; redelivered after a back-off
    DEAD_LETTERED = "dead_lettered"  # a non-transient error max_attempts times: dead-lettered


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


@per_registry
def _retries_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "portico_events_retries_total",
        "Failed attempts to apply an event that will be retried, by the failure's reason "
        "(redis, database, kafka, peer, network, declared: transient; error: not transient).",
        ("group", "topic", "reason"),
        registry=registry,
    )


@per_registry
def _blocked_gauge(registry: CollectorRegistry) -> Gauge:
    return Gauge(
        "portico_events_blocked_seconds",
        "Seconds the oldest record a consumer group is retrying has been blocking its partition (0: none).",
        ("group", "topic"),
        registry=registry,
    )


_EXPONENT_CAP = 30  # 2**30 times any base is past every cap; keeps the float finite
_STOP_POLL = 0.2  # how often a back-off looks whether the subscriber is stopping


def backoff_delay(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the ``attempt``-th failure: ``base * 2**(attempt-1)`` capped at ``cap``, with
    jitter in its upper half (replicas that failed together do not retry in step)."""
    ceiling = min(cap, base * 2.0 ** min(max(attempt - 1, 0), _EXPONENT_CAP))
    return ceiling * (0.5 + 0.5 * rand())


@dataclass
class _Blocked:
    """The record a partition is stuck on, since its first failure."""

    since: float  # time.monotonic() of the first failure
    last: float  # of the latest one
    attempts: int = 0
    permanent: int = 0  # of which not transient: these count towards max_attempts


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
        max_backoff: float = 30.0,
        max_attempts: int = 5,
    ) -> None:
        self._db = db
        self._table = processed_table
        self.group_id = group_id
        self._consumed = _consumed_counter(registry)
        self._retries = _retries_counter(registry)
        self._blocked_seconds = _blocked_gauge(registry)
        self._retry_delay = retry_delay
        self._max_backoff = max_backoff
        self._max_attempts = max_attempts
        # The record each partition is stuck on (one per partition at most), by (topic, partition, offset).
        self._blocked: dict[tuple[str, int, int], _Blocked] = {}
        self._subscribers: list[DefaultSubscriber] = []
        self._stop = asyncio.Event()
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
        self._subscribers.append(subscriber)
        self._blocked_seconds.labels(self.group_id, topic).set_function(lambda: self.blocked_seconds(topic))
        return subscriber

    def close(self) -> None:
        """Interrupt any back-off now (the broker's stop does too): the record waits for a redelivery."""
        self._stop.set()

    def blocked_seconds(self, topic: str) -> float:
        """How long the oldest record of ``topic`` still being retried has blocked its partition."""
        now = time.monotonic()
        # A record not retried for a while was handed to another replica by a rebalance: not ours.
        stale = 2 * self._max_backoff + 60
        waiting = [b.since for (t, _, _), b in self._blocked.items() if t == topic and now - b.last < stale]
        return now - min(waiting) if waiting else 0.0

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
            if await self._failed(message, where, event, exc):
                return
            raise  # NACK_ON_ERROR: seek back, so the same record is delivered again
        self._unblock(where)
        self._count(topic, outcome)

    async def _failed(
        self, message: KafkaMessage, where: tuple[str, int, int], event: events_pb2.Event, error: Exception
    ) -> bool:
        """Dead-letter the record (True) if it can never be applied; else count, back off and return False."""
        topic = where[0]
        failure = classify(error)
        now = time.monotonic()
        self._unblock(where, keep=True)
        blocked = self._blocked.setdefault(where, _Blocked(since=now, last=now))
        blocked.attempts += 1
        blocked.last = now
        context = {
            "group": self.group_id,
            "topic": topic,
            "partition": where[1],
            "offset": where[2],
            "event_id": event.event_id,
            "event_type": event.type,
            "attempts": blocked.attempts,
            "reason": failure.reason,
            "error": type(error).__name__,  # the type only: a message may quote data or a connection URL
        }
        if not failure.transient:
            blocked.permanent += 1
            if blocked.permanent >= self._max_attempts:
                await self._dead_letter(message, where, error)  # raises if it fails: redelivered
                self._blocked.pop(where, None)
                log.error(
                    "event handler failed too often; dead-lettered",
                    exc_info=error,
                    extra={**context, "dead_letter_topic": self.dead_letter_topic},
                )
                self._count(topic, Outcome.DEAD_LETTERED)
                return True
        delay = backoff_delay(blocked.attempts, self._retry_delay, self._max_backoff)
        self._retries.labels(self.group_id, topic, failure.reason).inc()
        self._count(topic, Outcome.FAILED)
        self._log_retry(failure, blocked, context, error, delay)
        await self._back_off(delay)
        return False

    @staticmethod
    def _log_retry(
        failure: Failure, blocked: _Blocked, context: dict[str, object], error: Exception, delay: float
    ) -> None:
        # A dependency outage fails every attempt the same way: the trace once, then one line each.
        exc_info = error if blocked.attempts == 1 or not failure.transient else None
        message = (
            "event handler failed on a dependency; retrying until it is back"
            if failure.transient
            else "event handler failed; will be redelivered"
        )
        log.warning(
            message,
            exc_info=exc_info,
            extra={
                **context,
                "retry_in": round(delay, 3),
                "blocked_for": round(blocked.last - blocked.since, 3),
            },
        )

    async def _back_off(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if the consumer is stopping (the broker's stop waits for the
        handler to return, so a long back-off would hold up a shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while (remaining := deadline - loop.time()) > 0 and not self._stopping():
            # close() sets the event; FastStream's stop only flips `running`, so look at it every so often.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), min(remaining, _STOP_POLL))

    def _stopping(self) -> bool:
        return self._stop.is_set() or any(not subscriber.running for subscriber in self._subscribers)

    def _unblock(self, where: tuple[str, int, int], *, keep: bool = False) -> None:
        """Forget what blocked ``where``'s partition: its record was applied (or another offset arrived)."""
        topic, partition, offset = where
        for stuck in [w for w in self._blocked if w[:2] == (topic, partition)]:
            if not (keep and stuck[2] == offset):
                del self._blocked[stuck]

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
