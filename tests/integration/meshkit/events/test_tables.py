"""``create_kit_tables`` in a backend's Alembic migration builds the same tables on SQLite and PostgreSQL:
unique event ids, a partial index on pending rows, a (group, event_id) key; the downgrade removes them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from harness.events import user_event
from harness.infra import InfraEnv
from harness.stores.events import database_url, events_db

pytestmark = [pytest.mark.infra, pytest.mark.timeout(60)]


def _schema(connection: Connection, prefix: str) -> dict[str, object]:
    inspector = inspect(connection)
    outbox, processed = f"{prefix}_outbox", f"{prefix}_processed_events"
    if outbox not in inspector.get_table_names():
        return {}
    return {
        "outbox_columns": [c["name"] for c in inspector.get_columns(outbox)],
        "outbox_unique": [u["column_names"] for u in inspector.get_unique_constraints(outbox)],
        "outbox_indexes": {
            i["name"]: i["column_names"]
            for i in inspector.get_indexes(outbox)
            if not i.get("duplicates_constraint")  # PostgreSQL lists the unique constraint's own index
        },
        "processed_pk": inspector.get_pk_constraint(processed)["constrained_columns"],
    }


def _index_sql(connection: Connection, kind: str, name: str) -> str:
    if kind == "sqlite":
        query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
    else:
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
    return str(connection.execute(text(query), {"name": name}).scalar_one())


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_the_migration_helper_creates_and_drops_the_kit_tables(
    kind: str, infra: InfraEnv, tmp_path: Path
) -> None:
    url = database_url(kind, tmp_path, infra.database_url)
    async with events_db(url, tmp_path) as edb:
        prefix = edb.prefix
        async with edb.db.engine.connect() as connection:
            schema = await connection.run_sync(_schema, prefix)
            index_sql = await connection.run_sync(_index_sql, kind, f"ix_{prefix}_outbox_pending")
        assert schema == {
            "outbox_columns": [
                "id",
                "event_id",
                "topic",
                "key",
                "event_type",
                "payload",
                "headers",
                "created_at",
                "published_at",
                "attempts",
                "last_error",
            ],
            "outbox_unique": [["event_id"]],
            "outbox_indexes": {f"ix_{prefix}_outbox_pending": ["id"]},
            "processed_pk": ["consumer_group", "event_id"],
        }
        assert "published_at IS NULL" in index_sql  # partial: only pending rows are indexed

        event = user_event("u-1", 1)
        row = {
            "event_id": event.event_id,
            "topic": "t",
            "key": "u-1",
            "event_type": event.type,
            "payload": event.SerializeToString(),
            "headers": {"content-type": "application/x-protobuf"},
            "created_at": event.occurred_at.ToDatetime(),
        }
        async with edb.db.write() as session:
            await session.execute(edb.outbox.insert().values(row))
        with pytest.raises(IntegrityError):
            async with edb.db.write() as session:
                await session.execute(edb.outbox.insert().values(row))
        async with edb.db.read() as session:
            attempts = await session.scalar(select(edb.outbox.c.attempts))
        assert attempts == 0  # the server default

    async with (
        events_db(url, tmp_path, prefix=f"{prefix}b") as other,
        other.db.engine.connect() as connection,
    ):
        assert await connection.run_sync(_schema, prefix) == {}  # downgraded away
