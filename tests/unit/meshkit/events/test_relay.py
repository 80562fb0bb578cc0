"""The relay round on SQLite with a fake broker: claim in id order, mark the acked prefix, record failures,
continue the writer's trace, wake up on commit. (The real Kafka paths are in tests/integration.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from faststream.kafka import KafkaBroker
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from sqlalchemy import MetaData, Table, select

from backends.users.events import USERS
from harness.events import eventually
from meshkit.db.database import Database
from meshkit.events.outbox import Outbox
from meshkit.events.relay import OutboxRelay, PublishError
from meshkit.events.tables import outbox_table
from stubs.events.v1 import events_pb2
from stubs.users.v1 import users_pb2

TOPIC = "portico.users.v1"


@dataclass
class FakeBroker:
    """Acks every publish at once, unless told to refuse one (by its position in the publish order)."""

    refuse_at: int | None = None
    published: list[dict[str, Any]] = field(default_factory=list)
    pings: int = 0

    async def publish(self, payload: bytes, topic: str, **kw: Any) -> asyncio.Future[Any]:
        assert kw["no_confirm"] is True
        if self.refuse_at is not None and len(self.published) == self.refuse_at:
            raise ConnectionError("kafka is away")
        self.published.append({"payload": payload, "topic": topic, **kw})
        self.published[-1]["traceparent_span"] = trace.get_current_span().get_span_context()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def ping(self, timeout: float) -> bool:
        self.pings += 1
        return self.refuse_at is None

    def event_ids(self) -> list[str]:
        return [events_pb2.Event.FromString(p["payload"]).event_id for p in self.published]


@dataclass
class Setup:
    db: Database
    table: Table
    broker: FakeBroker
    registry: CollectorRegistry
    exporter: InMemorySpanExporter
    provider: TracerProvider

    def relay(self, **kw: Any) -> OutboxRelay:
        return OutboxRelay(
            self.db,
            cast(KafkaBroker, self.broker),
            self.table,
            tracer_provider=self.provider,
            registry=self.registry,
            **kw,
        )

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, {"outbox": self.table.name, **labels})
        return 0.0 if value is None else value


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}")
    metadata = MetaData()
    table = outbox_table(metadata, "unit")
    async with db.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Setup(db, table, FakeBroker(), CollectorRegistry(), exporter, provider)
    await db.dispose()


def event(key: str) -> events_pb2.Event:
    return USERS.event("user.updated", "acme", key, actor=None, entity=users_pb2.User(id=key))


async def write(setup: Setup, keys: list[str], outbox: Outbox | None = None) -> list[str]:
    """One committed transaction per event; returns their ids in write order."""
    ids = []
    for key in keys:
        async with setup.db.write() as session:
            e = event(key)
            await (outbox or Outbox(setup.table)).add(session, TOPIC, e)
            ids.append(e.event_id)
    return ids


async def rows(setup: Setup) -> list[dict[str, Any]]:
    async with setup.db.read() as session:
        result = await session.execute(select(setup.table).order_by(setup.table.c.id))
        return [dict(row) for row in result.mappings()]


async def published(setup: Setup, count: int) -> bool:
    return len(setup.broker.published) >= count


async def test_a_round_publishes_pending_rows_in_id_order_and_marks_them(setup: Setup) -> None:
    ids = await write(setup, ["a", "b", "a", "c", "a"])
    relay = setup.relay(batch_size=3)
    assert await relay.relay_once() == 3
    assert await relay.relay_once() == 2
    assert await relay.relay_once() == 0
    assert setup.broker.event_ids() == ids
    first = setup.broker.published[0]
    assert first["key"] == b"a"
    assert first["topic"] == TOPIC
    assert first["headers"] == {"content-type": "application/x-protobuf", "event-type": "user.updated"}
    assert all(r["published_at"] is not None and r["attempts"] == 1 for r in await rows(setup))
    assert setup.metric("portico_outbox_published_total", topic=TOPIC) == 5


async def test_a_refused_publish_marks_the_prefix_and_records_the_attempt(setup: Setup) -> None:
    ids = await write(setup, ["a", "b", "c", "d"])
    setup.broker.refuse_at = 2
    relay = setup.relay()
    with pytest.raises(PublishError, match="2 of 4 not published: ConnectionError: kafka is away"):
        await relay.relay_once()
    state = await rows(setup)
    assert [r["published_at"] is not None for r in state] == [True, True, False, False]
    assert [r["attempts"] for r in state] == [1, 1, 1, 1]
    assert state[2]["last_error"] == "ConnectionError: kafka is away"
    assert setup.metric("portico_outbox_publish_failures_total") == 2

    setup.broker.refuse_at = None
    assert await relay.relay_once() == 2
    assert setup.broker.event_ids() == ids  # the rest, in order, nothing twice
    assert [r["attempts"] for r in await rows(setup)] == [1, 1, 2, 2]


async def test_the_publish_span_continues_the_writers_trace(setup: Setup) -> None:
    tracer = setup.provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        await write(setup, ["a"])
    await setup.relay().relay_once()

    writer = request.get_span_context()
    sends = [s for s in setup.exporter.get_finished_spans() if s.name == f"{TOPIC} send"]
    assert len(sends) == 1
    send = sends[0]
    assert send.kind is trace.SpanKind.PRODUCER
    assert send.context is not None
    assert send.parent is not None
    assert send.context.trace_id == writer.trace_id
    assert send.parent.span_id == writer.span_id
    assert [link.context.span_id for link in send.links] == [writer.span_id]
    assert send.attributes is not None
    assert send.attributes["messaging.destination.name"] == TOPIC
    # The broker (hence FastStream's telemetry middleware) runs under the relay's span.
    assert setup.broker.published[0]["traceparent_span"].span_id == send.context.span_id


async def backlog_drained(setup: Setup) -> bool:
    """Both backlog gauges read zero (they are set after a round's commit)."""
    pending = setup.metric("portico_outbox_pending")
    return pending == 0 and setup.metric("portico_outbox_oldest_pending_age_seconds") == 0


async def test_wake_publishes_at_once_and_the_gauges_follow_the_backlog(setup: Setup) -> None:
    relay = setup.relay(poll_interval=60)  # only a wake-up can explain a prompt publish
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.1)  # the first (empty) round is done; the relay now sleeps
        assert setup.metric("portico_outbox_pending") == 0
        await write(setup, ["a", "b"], Outbox(setup.table, wake=relay.wake))
        await eventually(lambda: published(setup, 2), timeout=2, interval=0.01, what="the wake-up")
        # The gauges are set after the round's commit: wait for that round to finish, not a fixed time.
        await eventually(lambda: backlog_drained(setup), timeout=2, interval=0.01, what="the gauges")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_while_kafka_refuses_the_relay_backs_off_and_reports_the_backlog(setup: Setup) -> None:
    await write(setup, ["a", "b", "c"])
    setup.broker.refuse_at = 0
    relay = setup.relay(poll_interval=0.05, max_backoff=0.4)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(1.0)
        # One failed round, then (back-off 0.2, 0.4, 0.4 s) pings: no more transactions until Kafka answers.
        assert [r["attempts"] for r in await rows(setup)] == [1, 1, 1]
        assert 2 <= setup.broker.pings <= 4
        assert setup.metric("portico_outbox_pending") == 3
        assert setup.metric("portico_outbox_oldest_pending_age_seconds") > 0.5
        setup.broker.refuse_at = None
        await eventually(lambda: published(setup, 3), timeout=2, interval=0.01, what="the retry")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_round_waiting_for_kafka_does_not_hold_up_writers(setup: Setup) -> None:
    """Kafka gone: the acknowledgements never come. A request writing to the same SQLite file meanwhile
    must not wait for the round's publish timeout (it would miss its caller's deadline)."""
    never: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def unanswered(payload: bytes, topic: str, **kw: Any) -> asyncio.Future[Any]:
        return never

    setup.broker.publish = unanswered  # type: ignore[method-assign]
    await write(setup, ["u-1"])
    relay = setup.relay(publish_timeout=2.0)
    round_ = asyncio.create_task(relay.relay_once())
    await asyncio.sleep(0.2)  # the round is waiting for the acknowledgement now
    started = asyncio.get_running_loop().time()
    await write(setup, ["u-2"])  # a sign-up's transaction
    waited = asyncio.get_running_loop().time() - started
    with pytest.raises(PublishError, match="not acknowledged"):
        await round_
    never.cancel()
    assert waited < 1.0
    assert [row["published_at"] for row in await rows(setup)] == [None, None]
    assert [row["attempts"] for row in await rows(setup)] == [1, 0]


async def test_a_burst_of_commits_is_one_round_and_a_lone_event_is_not_held_back(setup: Setup) -> None:
    # A window far longer than the writes can take, however busy the machine: the burst falls inside it.
    relay = setup.relay(poll_interval=60, min_interval=60.0)
    batches: list[int] = []
    relay_once = relay.relay_once

    async def counted() -> int | None:
        published = await relay_once()
        if published:
            batches.append(published)
        return published

    relay.relay_once = counted  # type: ignore[method-assign]
    outbox = Outbox(setup.table, wake=relay.wake)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.1)  # the first (empty) round is done; the relay now sleeps
        # A lone event goes at once (long before min_interval ends), not after a debounce.
        first = await write(setup, ["a"], outbox)
        await eventually(lambda: published(setup, 1), timeout=5, interval=0.01, what="the lone event")
        # Commits within min_interval of that busy round are held for the rest of the window...
        rest = await write(setup, ["b", "c", "a", "d"], outbox)
        await asyncio.sleep(0.3)  # time for a round, had one been started by their wake-ups
        assert batches == [1]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # ... and the round at its end takes them all, each once, in commit order.
    assert await relay_once() == 4
    assert setup.broker.event_ids() == first + rest
