"""The idempotent consumer on the real Kafka, on SQLite and PostgreSQL: its span continues the trace of the
request that wrote the event; a failing handler is redelivered; a malformed record does not wedge; stopping
interrupts a back-off without losing the record."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession

from harness.events import eventually, running, started_broker, user_event
from harness.infra import InfraEnv
from harness.kafka import create_topic, event_of, read_records
from harness.stores.events import database_url, events_db
from meshkit.events.consumers import EventConsumer, Outcome
from meshkit.events.outbox import Outbox
from meshkit.events.relay import OutboxRelay
from stubs.events.v1 import events_pb2

pytestmark = [pytest.mark.infra, pytest.mark.timeout(180)]

KINDS = ["sqlite", "postgresql"]
HEADERS = {"content-type": "application/x-protobuf", "event-type": "user.updated"}


@pytest.mark.parametrize("kind", KINDS)
async def test_the_consumer_span_continues_the_writers_trace(
    kind: str, infra: InfraEnv, tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    topic = await create_topic(infra.kafka_bootstrap)
    seen: list[SpanContext] = []

    async def on_updated(session: AsyncSession, event: events_pb2.Event) -> None:
        seen.append(trace.get_current_span().get_span_context())

    async def handled() -> bool:
        return bool(seen)

    async with events_db(database_url(kind, tmp_path, infra.database_url), tmp_path) as edb:
        consumer = EventConsumer(edb.db, edb.processed, f"test-{edb.prefix}", registry=CollectorRegistry())
        handlers = {"user.updated": on_updated}
        async with (
            started_broker(infra.kafka_bootstrap, tracer_provider=provider, service="writer") as broker,
            started_broker(
                infra.kafka_bootstrap,
                tracer_provider=provider,
                service="reader",
                subscribe=lambda b: consumer.subscribe(b, topic, handlers),
            ),
        ):
            relay = OutboxRelay(
                edb.db, broker, edb.outbox, tracer_provider=provider, registry=CollectorRegistry()
            )
            with provider.get_tracer("test").start_as_current_span("PATCH /api/v1/users/u-1") as request:
                async with edb.db.write() as session:
                    await Outbox(edb.outbox, wake=relay.wake).add(session, topic, user_event("u-1", 1))
            async with running(relay):  # another task: the request's context is not current there
                await eventually(handled, timeout=60, what="the event to be handled")

    writer = request.get_span_context()
    assert seen[0].trace_id == writer.trace_id
    spans = exporter.get_finished_spans()
    process = [s for s in spans if s.kind is SpanKind.CONSUMER and s.name == f"{topic} process"]
    assert process
    assert process[0].context is not None
    assert process[0].context.trace_id == writer.trace_id
    send = next(s for s in spans if s.name == f"{topic} send")
    assert [link.context.span_id for link in send.links] == [writer.span_id]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_failing_handler_is_redelivered_and_a_malformed_record_skipped(
    kind: str, infra: InfraEnv, tmp_path: Path
) -> None:
    topic = await create_topic(infra.kafka_bootstrap, partitions=1)  # one partition: one queue
    first, second = user_event("u-1", 1), user_event("u-1", 2)
    failures_left = {first.event_id: 2}
    applied: list[str] = []

    async def on_updated(session: AsyncSession, event: events_pb2.Event) -> None:
        if failures_left.get(event.event_id, 0) > 0:
            failures_left[event.event_id] -= 1
            raise RuntimeError("downstream not ready")
        applied.append(event.event_id)

    registry = CollectorRegistry()

    def count(outcome: Outcome) -> float:
        labels = {"group": consumer.group_id, "topic": topic, "outcome": outcome.value}
        return registry.get_sample_value("portico_events_consumed_total", labels) or 0.0

    async def done() -> bool:
        return count(Outcome.APPLIED) == 2

    async with events_db(database_url(kind, tmp_path, infra.database_url), tmp_path) as edb:
        consumer = EventConsumer(
            edb.db, edb.processed, f"test-{edb.prefix}", registry=registry, retry_delay=0.1
        )
        handlers = {"user.updated": on_updated}
        async with (
            started_broker(infra.kafka_bootstrap, service="writer") as broker,
            started_broker(
                infra.kafka_bootstrap,
                service="reader",
                subscribe=lambda b: consumer.subscribe(b, topic, handlers),
            ),
        ):
            await broker.publish(b"\x08\x96\x01 definitely not an event", topic, key=b"u-1", headers=HEADERS)
            for event in (first, second):
                await broker.publish(event.SerializeToString(), topic, key=b"u-1", headers=HEADERS)
            await eventually(done, timeout=60, what="both events to be applied")

    assert applied == [first.event_id, second.event_id]  # redelivered in place, order kept
    assert count(Outcome.FAILED) == 2
    assert count(Outcome.MALFORMED) == 1
    assert count(Outcome.DUPLICATE) == 0


async def test_a_poison_event_is_dead_lettered_and_the_partition_moves_on(
    infra: InfraEnv, tmp_path: Path
) -> None:
    topic = await create_topic(infra.kafka_bootstrap, partitions=1)
    poison, after = user_event("u-1", 1), user_event("u-1", 2)
    applied: list[str] = []

    async def on_updated(session: AsyncSession, event: events_pb2.Event) -> None:
        if event.event_id == poison.event_id:
            raise ValueError("this event can never be applied")
        applied.append(event.event_id)

    async def after_applied() -> bool:
        return applied == [after.event_id]

    async with events_db(database_url("sqlite", tmp_path, infra.database_url), tmp_path) as edb:
        group = f"test-{edb.prefix}"
        consumer = EventConsumer(
            edb.db, edb.processed, group, registry=CollectorRegistry(), retry_delay=0.05, max_attempts=3
        )
        handlers = {"user.updated": on_updated}
        async with (
            started_broker(infra.kafka_bootstrap, service="writer") as broker,
            started_broker(
                infra.kafka_bootstrap,
                service="reader",
                subscribe=lambda b: consumer.subscribe(b, topic, handlers),
            ),
        ):
            for event in (poison, after):
                await broker.publish(event.SerializeToString(), topic, key=b"u-1", headers=HEADERS)
            await eventually(after_applied, timeout=60, what="the event after the poison one")
        (parked,) = await read_records(infra.kafka_bootstrap, consumer.dead_letter_topic, until_distinct=1)

    assert event_of(parked).event_id == poison.event_id
    assert parked.key == b"u-1"
    headers = {key: value.decode() for key, value in parked.headers}
    assert (headers["x-dlq-topic"], headers["x-dlq-partition"], headers["x-dlq-offset"]) == (topic, "0", "0")
    assert headers["x-dlq-error"] == "ValueError"


async def test_stopping_interrupts_a_back_off_and_the_record_is_applied_after_the_restart(
    infra: InfraEnv, tmp_path: Path
) -> None:
    topic = await create_topic(infra.kafka_bootstrap, partitions=1)
    event = user_event("u-1", 1)
    redis_up = False  # the dependency the handler needs
    applied: list[str] = []
    attempts = 0

    async def on_updated(session: AsyncSession, event: events_pb2.Event) -> None:
        nonlocal attempts
        attempts += 1
        if not redis_up:
            raise ConnectionRefusedError(111, "Connection refused")
        applied.append(event.event_id)

    async def retrying() -> bool:
        return attempts >= 2  # in its (second, long) back-off now

    async def done() -> bool:
        return applied == [event.event_id]

    async with events_db(database_url("sqlite", tmp_path, infra.database_url), tmp_path) as edb:
        group = f"test-{edb.prefix}"

        def consumer() -> EventConsumer:
            # Back-off of 20 s or more from the second attempt: far past the broker's graceful timeout.
            return EventConsumer(edb.db, edb.processed, group, registry=CollectorRegistry(), retry_delay=20)

        first = consumer()
        handlers = {"user.updated": on_updated}
        async with started_broker(infra.kafka_bootstrap, service="writer") as broker:
            await broker.publish(event.SerializeToString(), topic, key=b"u-1", headers=HEADERS)
        reader = started_broker(
            infra.kafka_bootstrap, service="reader", subscribe=lambda b: first.subscribe(b, topic, handlers)
        )
        async with reader:
            await eventually(retrying, timeout=90, what="the handler to fail and back off")
            stopping = time.monotonic()
        stopped_in = time.monotonic() - stopping
        # Without giving way the stop would wait out the broker's graceful timeout (8 s), then cancel.
        assert stopped_in < 6.0

        redis_up = True
        second = consumer()
        async with started_broker(
            infra.kafka_bootstrap, service="reader", subscribe=lambda b: second.subscribe(b, topic, handlers)
        ):
            await eventually(done, timeout=90, what="the redelivered record to be applied")
    assert applied == [event.event_id]  # not lost, not dead-lettered, applied once
