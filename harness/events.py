"""Shared steps of the event integration tests: write events in committed transactions, run a relay, read
the outbox state, and wait until an async condition holds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from faststream.kafka import KafkaBroker
from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from backends.users.events import USERS
from harness.stores.events import EventsDb
from meshkit.events.broker import build_broker, start_with_retry
from meshkit.events.outbox import Outbox
from meshkit.events.relay import OutboxRelay
from stubs.events.v1 import events_pb2
from stubs.users.v1 import users_pb2


def user_event(key: str, seq: int) -> events_pb2.Event:
    return USERS.event(
        "user.updated", "acme", key, actor=None, entity=users_pb2.User(id=key, first_name=f"v{seq}")
    )


async def write_events(
    edb: EventsDb,
    topic: str,
    keys: list[str],
    per_key: int,
    *,
    per_transaction: int = 10,
    wake: Callable[[], None] | None = None,
) -> dict[str, list[str]]:
    """``per_key`` events for each key, interleaved, committed ``per_transaction`` at a time; returns the
    event ids per key in write order."""
    outbox = Outbox(edb.outbox, wake=wake)
    written: dict[str, list[str]] = {key: [] for key in keys}
    plan = [(key, seq) for seq in range(per_key) for key in keys]
    for start in range(0, len(plan), per_transaction):
        async with edb.db.write() as session:
            for key, seq in plan[start : start + per_transaction]:
                event = user_event(key, seq)
                await outbox.add(session, topic, event)
                written[key].append(event.event_id)
    return written


async def outbox_state(edb: EventsDb) -> tuple[int, int, int]:
    """(rows, published rows, rows published more than once per attempts count > 1)."""
    c = edb.outbox.c
    async with edb.db.read() as session:
        total, published, retried = (
            await session.execute(
                select(
                    func.count(),
                    func.count(c.published_at),
                    func.count().filter(c.attempts > 1),
                )
            )
        ).one()
    return int(total), int(published), int(retried)


async def all_published(edb: EventsDb) -> bool:
    total, published, _ = await outbox_state(edb)
    return total == published


@asynccontextmanager
async def started_broker(
    bootstrap: str,
    *,
    tracer_provider: TracerProvider | None = None,
    service: str = "test",
    subscribe: Callable[[KafkaBroker], object] | None = None,
) -> AsyncIterator[KafkaBroker]:
    """The kit's broker, started (after ``subscribe(broker)`` registered its subscribers), then stopped."""
    broker = build_broker(
        bootstrap, service=service, tracer_provider=tracer_provider, registry=CollectorRegistry()
    )
    if subscribe is not None:
        subscribe(broker)
    try:
        async with asyncio.timeout(60):
            await start_with_retry(broker, bootstrap)
        yield broker
    finally:
        # aiokafka's stop flushes pending sends first, forever while Kafka is away: bound it, so a failing
        # test reports its failure instead of hanging.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(broker.stop(), 15)


@asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[asyncio.Task[Any]]:
    """``relay.run()`` as a task for the duration of the block, cancelled after it."""
    task = asyncio.create_task(relay.run(), name="outbox-relay")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float, interval: float = 0.05, what: str = "condition"
) -> float:
    """Await ``check()`` until true; returns the seconds it took, ``TimeoutError`` after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
