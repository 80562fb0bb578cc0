"""Keeps the event backbone's tables from growing without end.

- Published outbox rows are only history once Kafka acknowledged them: removed after
  ``PORTICO_OUTBOX_RETENTION_HOURS`` (pending rows are never touched, however old).
- Processed-event rows exist to drop redeliveries: a record can only come again while Kafka keeps it,
  so they are removed after ``PORTICO_PROCESSED_EVENTS_RETENTION_HOURS``, which must stay longer than
  the topics' retention (7 days by default: 14 days here).

Deletes run in small batches, each its own short transaction, so a purge never holds SQLite's write
lock (or many PostgreSQL row locks) for long; several replicas purging at once only repeat work.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Column, Table, delete, select, tuple_

from meshkit.db.database import Database
from meshkit.registries import per_registry

log = logging.getLogger(__name__)


@per_registry
def _purged_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "portico_rows_purged_total",
        "Rows of the event backbone's tables removed after their retention.",
        ("table",),
        registry=registry,
    )


@dataclass
class Retention:
    """Rows of ``table`` whose ``column`` (a timestamp, NULL meaning "keep") is older than ``keep``."""

    db: Database
    table: Table
    column: str
    keep: timedelta
    registry: CollectorRegistry
    interval: float = 3600.0
    batch: int = 1000

    async def purge_once(self, now: datetime | None = None) -> int:
        """Remove every expired row now; returns how many."""
        stamp: Column[datetime] = self.table.c[self.column]
        key = list(self.table.primary_key.columns)
        cutoff = (now or datetime.now(UTC)) - self.keep
        removed = 0
        while True:
            expired = select(*key).where(stamp.is_not(None), stamp < cutoff).limit(self.batch)
            # A row-value IN works on both dialects, whatever the primary key's width.
            statement = delete(self.table).where(tuple_(*key).in_(expired))
            async with self.db.write() as session:
                count = int((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]
            removed += count
            if count < self.batch:
                break
        if removed:
            _purged_counter(self.registry).labels(self.table.name).inc(removed)
            log.info("purged expired rows", extra={"table": self.table.name, "rows": removed})
        return removed

    async def run(self) -> None:
        """Purge every ``interval`` seconds until cancelled; a failed round is retried at the next one."""
        while True:
            try:
                await self.purge_once()
            except Exception as exc:  # the database is away: the rows simply wait for the next round
                log.warning("purge failed", extra={"table": self.table.name, "error": str(exc)})
            await asyncio.sleep(self.interval)
