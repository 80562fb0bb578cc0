"""Retention of the event backbone's tables on SQLite and PostgreSQL (the posts backend's migrated schema):
old published outbox rows and old processed-event ids go, in batches; pending rows never do."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from backends.posts.models import outbox, processed_events
from harness.stores.databases import DIALECTS, backend_database
from meshkit.db.database import Database
from meshkit.events.retention import Retention

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(params=DIALECTS)
async def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    async with backend_database("posts", request, tmp_path_factory.mktemp("retention")) as database:
        yield database


def outbox_row(created: datetime, published: datetime | None) -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "topic": "portico.posts.v1",
        "key": "k",
        "event_type": "post.created",
        "payload": b"\x00",
        "headers": {},
        "created_at": created,
        "published_at": published,
    }


async def count(db: Database, table: object) -> int:
    async with db.read() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_published_outbox_rows_go_after_their_retention_and_pending_ones_stay(db: Database) -> None:
    old = [outbox_row(NOW - timedelta(days=10), NOW - timedelta(days=10)) for _ in range(5)]
    recent = outbox_row(NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    stuck = outbox_row(NOW - timedelta(days=30), None)  # Kafka never took it: it must be kept
    async with db.write() as session:
        await session.execute(outbox.insert(), [*old, recent, stuck])
    registry = CollectorRegistry()
    retention = Retention(db, outbox, "published_at", timedelta(days=7), registry, batch=2)
    assert await retention.purge_once(NOW) == 5
    async with db.read() as session:
        kept = set((await session.execute(select(outbox.c.event_id))).scalars())
    assert kept == {recent["event_id"], stuck["event_id"]}
    assert registry.get_sample_value("portico_rows_purged_total", {"table": "posts_outbox"}) == 5
    assert await retention.purge_once(NOW) == 0


async def test_processed_event_ids_go_after_their_retention(db: Database) -> None:
    rows = [
        {
            "consumer_group": group,
            "event_id": str(uuid.uuid4()),
            "event_type": "user.deleted",
            "processed_at": t,
        }
        for group, t in (
            ("g1", NOW - timedelta(days=20)),
            ("g2", NOW - timedelta(days=20)),
            ("g1", NOW - timedelta(days=15)),
            ("g1", NOW - timedelta(days=1)),
        )
    ]
    async with db.write() as session:
        await session.execute(processed_events.insert(), rows)
    retention = Retention(
        db, processed_events, "processed_at", timedelta(days=14), CollectorRegistry(), batch=2
    )
    assert await retention.purge_once(NOW) == 3
    assert await count(db, processed_events) == 1
