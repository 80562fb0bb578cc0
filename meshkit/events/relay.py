"""Publish a backend's outbox to Kafka, oldest first, at least once.

Each round (on PostgreSQL ONE write transaction): take the relay lock, claim the oldest pending rows in
``id`` order, send them (pipelined, see :mod:`meshkit.events.delivery`), await the acknowledgements, mark
the acknowledged prefix published and record the attempt on the rest, commit. A process that dies
before the commit republishes the round later (consumers dedupe by ``event_id``); one that dies after it
loses nothing.

The lock makes several instances of a backend safe and keeps per-key order: on PostgreSQL a
transaction-scoped advisory lock (an instance that cannot get it skips the round). On SQLite, whose only
database lock is the one write lock of the whole file, a round holds a lock file beside the database
instead (:mod:`meshkit.events.relay_lock`), claims in a read, publishes, then marks in a short write
transaction: a round waiting for Kafka's acknowledgements (up to ``publish_timeout``) never holds up the
requests that write. After a failure no round starts before Kafka answers again.

A burst of commits is one round: a wake-up within ``min_interval`` of the start of the last round that
published something waits for the rest of that interval, so the commits meanwhile ride along; a wake-up
after a quiet spell starts a round at once. The backlog gauges are read at most once per
``poll_interval`` (and after every failed round), not after every round.

``id`` order is insert order; on PostgreSQL two transactions may commit out of that order, so a backend
must serialise the changes of one entity (update the entity row, which locks it, before adding its
event) for per-key order to hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from faststream.kafka import KafkaBroker
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanKind, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry
from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.db.database import Database
from meshkit.events.delivery import Delivery, deliver
from meshkit.events.relay_lock import lock_file, try_lock
from meshkit.events.relay_metrics import RelayMetrics, relay_metrics
from meshkit.events.topics import TopicCreationError, TopicCreator

__all__ = ["OutboxRelay", "OutboxRow"]

log = logging.getLogger(__name__)

# First key of the two-int advisory lock: a key space apart from one-bigint locks such as the migrations'.
_LOCK_NAMESPACE = 0x706F7274  # "port"
_FIRST_BACKOFF = 0.2
_LOCK_RETRY = 0.05
_PING_TIMEOUT = 1.0
# The relay span replaces the writer's trace context; other headers (e.g. baggage) travel unchanged.
_TRACE_HEADERS = frozenset(TraceContextTextMapPropagator().fields)


@dataclass(frozen=True)
class OutboxRow:
    """A pending outbox row, as one round publishes it."""

    id: int
    event_id: str
    topic: str
    key: str
    payload: bytes
    headers: dict[str, str]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite drops the zone


class OutboxRelay:
    """Publishes pending outbox rows: ``run()`` until cancelled, ``wake()`` after a commit that added some."""

    def __init__(
        self,
        db: Database,
        broker: KafkaBroker,
        outbox_table: Table,
        *,
        tracer_provider: TracerProvider | None,
        registry: CollectorRegistry,
        batch_size: int = 100,
        poll_interval: float = 1.0,
        publish_timeout: float = 5.0,
        max_backoff: float = 5.0,
        min_interval: float = 0.05,
        topics: TopicCreator | None = None,
    ) -> None:
        self._db = db
        self._broker = broker
        self._topics = topics
        self._table = outbox_table
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        self._metrics: RelayMetrics = relay_metrics(registry, outbox_table.name)
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._publish_timeout = publish_timeout
        self._max_backoff = max_backoff
        self._min_interval = min_interval
        self._wakeup = asyncio.Event()
        self._last_busy = -math.inf  # loop time at which the last round that published something began
        self._last_observed = -math.inf  # loop time of the last backlog reading
        self._unresolved: list[asyncio.Future[Any]] = []
        self._lock_file = None if db.dialect == "postgresql" else lock_file(db.url, outbox_table.name)

    def wake(self) -> None:
        """Start a round now rather than at the next poll (the outbox calls it after a commit)."""
        self._wakeup.set()

    async def run(self) -> None:
        """Publish forever; cancel the task to stop (an unfinished round is rolled back, not lost)."""
        loop = asyncio.get_running_loop()
        delay = 0.0
        while True:
            self._wakeup.clear()  # a wake during the round asks for another one
            started = loop.time()
            try:
                published = await self._guarded_round(retrying=delay > 0)
            except Exception as exc:  # Kafka or the database is away: the rows stay pending
                delay = self._backoff(delay)
                log.warning(
                    "outbox relay round failed",
                    extra={"outbox": self._table.name, "error": str(exc), "retry_in_s": delay},
                )
                await self._observe_backlog()
                await self._pause(delay)
                continue
            delay = 0.0
            if published is None:  # another instance holds the lock (and reports the backlog)
                await asyncio.sleep(_LOCK_RETRY)
                continue
            if published:
                self._last_busy = started
            if loop.time() - self._last_observed >= self._poll_interval:
                await self._observe_backlog()
            if published < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)
                # Woken within min_interval of a busy round: let the rest of the burst commit first.
                await asyncio.sleep(max(0.0, self._last_busy + self._min_interval - loop.time()))

    async def relay_once(self) -> int | None:
        """One round; returns how many rows were published, ``None`` if another instance holds the lock.

        Raises :class:`PublishError` when some claimed rows could not be published (they stay pending).
        """
        if self._db.dialect == "postgresql":
            async with self._db.write() as session:
                if not await self._lock(session):
                    return None
                rows = await self._claim(session)
                if not rows:
                    return 0
                delivery = await self._deliver(rows)
                await self._mark(session, delivery)
        elif self._lock_file is None:  # in-memory SQLite: one connection, no other writer to hold up
            async with self._db.write() as session:
                rows = await self._claim(session)
                if not rows:
                    return 0
                delivery = await self._deliver(rows)
                await self._mark(session, delivery)
        else:
            # SQLite has one writer for the whole file: waiting for Kafka inside a write transaction
            # would stall every write request for up to publish_timeout (past a caller's deadline).
            with try_lock(self._lock_file) as locked:
                if not locked:
                    return None
                async with self._db.read() as session:
                    rows = await self._claim(session)
                if not rows:
                    return 0
                delivery = await self._deliver(rows)
                async with self._db.write() as session:
                    await self._mark(session, delivery)
        self._unresolved.extend(delivery.unresolved)
        for row in delivery.acked:
            self._metrics.published.labels(self._table.name, row.topic).inc()
        if delivery.error is not None:
            self._metrics.failures.labels(self._table.name).inc(len(delivery.failed))
            raise PublishError(f"{len(delivery.failed)} of {len(rows)} not published: {delivery.error}")
        return len(delivery.acked)

    def _backoff(self, delay: float) -> float:
        return min(max(2 * delay, _FIRST_BACKOFF), self._max_backoff)

    async def _guarded_round(self, *, retrying: bool) -> int | None:
        """A round, unless it is bound to fail: then no transaction (and no SQLite write lock) is taken.

        While sends of a timed-out round are unanswered (Kafka away: the idempotent producer retries them
        forever), claiming again would only queue duplicates of them; after a failure, Kafka must answer
        a ping first.
        """
        self._unresolved = [f for f in self._unresolved if not f.done()]
        if self._unresolved:
            raise PublishError(f"{len(self._unresolved)} earlier sends still unacknowledged")
        if retrying and not await self._broker.ping(timeout=_PING_TIMEOUT):
            raise PublishError("kafka does not answer")
        return await self.relay_once()

    async def _pause(self, delay: float) -> None:
        if self._unresolved:  # resume as soon as Kafka answers them
            await asyncio.wait(self._unresolved, timeout=delay)
        else:
            await asyncio.sleep(delay)

    async def _lock(self, session: AsyncSession) -> bool:
        if self._db.dialect != "postgresql":
            return True  # SQLite: the write transaction is BEGIN IMMEDIATE, writers are serialised
        locked = await session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:ns, hashtext(:name))"),
            {"ns": _LOCK_NAMESPACE, "name": self._table.name},
        )
        return bool(locked)

    async def _claim(self, session: AsyncSession) -> list[OutboxRow]:
        c = self._table.c
        result = await session.execute(
            select(c.id, c.event_id, c.topic, c.key, c.payload, c.headers)
            .where(c.published_at.is_(None))
            .order_by(c.id)
            .limit(self._batch_size)
        )
        return [OutboxRow(*row) for row in result.all()]

    async def _mark(self, session: AsyncSession, delivery: Delivery[OutboxRow]) -> None:
        c = self._table.c
        if delivery.acked:
            await session.execute(
                self._table.update()
                .where(c.id.in_([row.id for row in delivery.acked]))
                .values(published_at=datetime.now(UTC), attempts=c.attempts + 1, last_error=None)
            )
        if delivery.failed:
            await session.execute(
                self._table.update()
                .where(c.id.in_([row.id for row in delivery.failed]))
                .values(attempts=c.attempts + 1, last_error=(delivery.error or "")[:500])
            )

    async def _deliver(self, rows: list[OutboxRow]) -> Delivery[OutboxRow]:
        if self._topics is not None:  # a topic's first event: created replicated, not by auto-creation
            try:
                await self._topics.ensure(row.topic for row in rows)
            except TopicCreationError as exc:
                raise PublishError(str(exc)) from exc
        return await deliver(rows, self._send, timeout=self._publish_timeout)

    async def _send(self, row: OutboxRow) -> asyncio.Future[Any]:
        """Publish one row inside a PRODUCER span that continues the trace of the request that wrote it."""
        parent = propagate.extract(row.headers)
        writer = trace.get_current_span(parent).get_span_context()
        span = self._tracer.start_span(
            f"{row.topic} send",
            context=parent,
            kind=SpanKind.PRODUCER,
            links=[Link(writer)] if writer.is_valid else None,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": row.topic,
                "messaging.message.id": row.event_id,
                "messaging.kafka.message.key": row.key,
            },
        )
        headers = {k: v for k, v in row.headers.items() if k not in _TRACE_HEADERS}
        try:
            # Current span, so FastStream's telemetry middleware injects a traceparent under it.
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                future = await self._broker.publish(
                    row.payload, row.topic, key=row.key.encode(), headers=headers, no_confirm=True
                )
        except BaseException as exc:
            _end_span(span, exc)
            raise
        future.add_done_callback(lambda done: _end_span(span, _failure(done)))
        return future

    async def _observe_backlog(self) -> None:
        self._last_observed = asyncio.get_running_loop().time()
        c = self._table.c
        try:
            async with self._db.read() as session:
                count, oldest = (
                    await session.execute(
                        select(func.count(), func.min(c.created_at)).where(c.published_at.is_(None))
                    )
                ).one()
        except Exception:  # the database is away; the round's own failure is logged already
            return
        age = (datetime.now(UTC) - _aware(oldest)).total_seconds() if oldest is not None else 0.0
        self._metrics.pending.labels(self._table.name).set(count)
        self._metrics.oldest_age.labels(self._table.name).set(max(age, 0.0))


class PublishError(Exception):
    """Some rows of a round were not acknowledged by Kafka; they stay pending and are retried."""


def _failure(future: asyncio.Future[Any]) -> BaseException | None:
    if future.cancelled():
        return asyncio.CancelledError()
    return future.exception()


def _end_span(span: Span, error: BaseException | None) -> None:
    if not span.is_recording():
        return
    if error is not None:
        span.record_exception(error)
        span.set_status(StatusCode.ERROR, type(error).__name__)
    span.end()
