"""The two tables of the event backbone, named per backend so several can share one PostgreSQL database.

- ``<prefix>_outbox``: events written in the same transaction as the change they describe; the relay
  publishes pending rows (``published_at`` NULL) in ``id`` order and marks them.
- ``<prefix>_processed_events``: the ``(consumer group, event_id)`` pairs a consumer has applied, which
  makes at-least-once delivery idempotent.

The same column lists serve the runtime :class:`~sqlalchemy.Table` objects and the Alembic migration
(:func:`create_kit_tables`), so the schema is written once.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.sql.schema import SchemaItem

__all__ = [
    "create_kit_tables",
    "drop_kit_tables",
    "outbox_table",
    "processed_events_table",
]

# SQLite only autoincrements an INTEGER PRIMARY KEY (a BIGINT one is not a rowid alias).
_Id = BigInteger().with_variant(Integer(), "sqlite")


class SchemaOps(Protocol):
    """What the helpers need from Alembic's ``op`` (the module satisfies this protocol)."""

    def create_table(self, table_name: str, *columns: SchemaItem, **kw: Any) -> Table: ...

    def drop_table(self, table_name: str, **kw: Any) -> None: ...


def _outbox_items(prefix: str) -> list[SchemaItem]:
    id_ = Column("id", _Id, primary_key=True, autoincrement=True, comment="Publish order.")
    published_at = Column("published_at", DateTime(timezone=True), nullable=True, comment="NULL: pending.")
    return [
        id_,
        Column("event_id", String(36), nullable=False),
        Column("topic", String(249), nullable=False),  # Kafka's longest topic name
        Column("key", String(255), nullable=False),
        Column("event_type", String(100), nullable=False),
        Column("payload", LargeBinary, nullable=False, comment="A serialized events.v1.Event."),
        Column("headers", JSON, nullable=False, comment="Kafka headers, with the writer's trace context."),
        Column("created_at", DateTime(timezone=True), nullable=False),
        published_at,
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text, nullable=True),
        UniqueConstraint("event_id", name=f"uq_{prefix}_outbox_event_id"),
        # Partial: the relay's claim query only ever reads pending rows, which stay few.
        Index(
            f"ix_{prefix}_outbox_pending",
            id_,
            postgresql_where=published_at.is_(None),
            sqlite_where=published_at.is_(None),
        ),
    ]


def _processed_items(prefix: str) -> list[SchemaItem]:
    return [
        Column("consumer_group", String(255), nullable=False),
        Column("event_id", String(36), nullable=False),
        Column("event_type", String(100), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("consumer_group", "event_id", name=f"pk_{prefix}_processed_events"),
    ]


def outbox_table(metadata: MetaData, prefix: str) -> Table:
    """The outbox of one backend, ``<prefix>_outbox``."""
    return Table(f"{prefix}_outbox", metadata, *_outbox_items(prefix))


def processed_events_table(metadata: MetaData, prefix: str) -> Table:
    """The applied-events ledger of one backend's consumers, ``<prefix>_processed_events``."""
    return Table(f"{prefix}_processed_events", metadata, *_processed_items(prefix))


def create_kit_tables(op: SchemaOps, prefix: str) -> None:
    """Create both tables from a backend's Alembic migration: ``create_kit_tables(op, "users")``."""
    op.create_table(f"{prefix}_outbox", *_outbox_items(prefix))
    op.create_table(f"{prefix}_processed_events", *_processed_items(prefix))


def drop_kit_tables(op: SchemaOps, prefix: str) -> None:
    """The downgrade of :func:`create_kit_tables`."""
    op.drop_table(f"{prefix}_processed_events")
    op.drop_table(f"{prefix}_outbox")
