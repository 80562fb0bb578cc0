"""Sweeps blobs no post refers to: left behind when a write transaction failed after its blob was
stored, or when removing a blob failed (both logged when they happen).

Only blobs older than a grace period are candidates, so a create still in flight is never looked at;
and each candidate is removed through :meth:`ImageRefs.collect`, which takes the key's lock and checks
again, so a post that takes the same bytes meanwhile keeps its blob.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter

from backends.posts.blobs import BlobStore
from backends.posts.image_refs import ImageRefs
from meshkit.registries import per_registry

log = logging.getLogger(__name__)


@per_registry
def _removed_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "portico_posts_orphan_blobs_removed_total", "Unreferenced image blobs removed.", registry=registry
    )


@dataclass
class OrphanSweeper:
    blobs: BlobStore
    refs: ImageRefs
    registry: CollectorRegistry
    grace: timedelta = timedelta(hours=1)
    interval: float = 3600.0

    async def sweep_once(self, now: datetime | None = None) -> int:
        """Remove the unreferenced blobs older than the grace period; how many were removed."""
        candidates = await self.refs.unreferenced(
            await self.blobs.keys((now or datetime.now(UTC)) - self.grace)
        )
        removed = 0
        for key in candidates:
            if await self.refs.collect(key):
                removed += 1
        if removed:
            _removed_counter(self.registry).inc(removed)
            log.info("removed unreferenced images", extra={"count": removed})
        return removed

    async def run(self) -> None:
        """Sweep every ``interval`` seconds until cancelled; a failed sweep waits for the next one."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep_once()
            except Exception as exc:  # the store or the database is away
                log.warning("orphan sweep failed", extra={"error": str(exc)})
