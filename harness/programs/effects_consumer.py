"""A consumer process that applies one topic's events with the kit's :class:`EventConsumer`, for fault tests.

Each application inserts one row into ``effects`` (no unique index, so a repeated application would show
as a second row) in the consumer's transaction, in a SQLite file the test reads. Its Prometheus metrics
(``portico_events_consumed_total`` by outcome) are served on a port, so the test sees redeliveries.

    python -m harness.programs.effects_consumer <bootstrap> <topic> <group> <sqlite path> <metrics port>
"""

from __future__ import annotations

import asyncio
import signal
import sys

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, start_http_server
from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.db.database import Database
from meshkit.events.broker import build_broker, start_with_retry
from meshkit.events.consumers import EventConsumer
from meshkit.events.tables import processed_events_table
from stubs.events.v1 import events_pb2

APPLY_SECONDS = 0.002  # a little work per event, so a crash lands mid-stream

metadata = MetaData()
processed = processed_events_table(metadata, "fault")
effects = Table(
    "effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("entity_id", String(64), nullable=False),
)


async def apply(session: AsyncSession, event: events_pb2.Event) -> None:
    await session.execute(effects.insert().values(event_id=event.event_id, entity_id=event.entity_id))
    await asyncio.sleep(APPLY_SECONDS)


async def main(bootstrap: str, topic: str, group: str, path: str, metrics_port: int) -> None:
    db = Database(f"sqlite+aiosqlite:///{path}")
    async with db.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    registry = CollectorRegistry()
    start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
    broker = build_broker(bootstrap, service="effects", tracer_provider=TracerProvider(), registry=registry)
    consumer = EventConsumer(db, processed, group, registry=registry, retry_delay=0.2, max_backoff=2.0)
    consumer.subscribe(broker, topic, {"user.updated": apply})
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await start_with_retry(broker, bootstrap)
    print("consuming", flush=True)
    await stop.wait()
    consumer.close()
    await broker.stop()
    await db.dispose()


if __name__ == "__main__":
    bootstrap, topic, group, path, port = sys.argv[1:6]
    asyncio.run(main(bootstrap, topic, group, path, int(port)))
