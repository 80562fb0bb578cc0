"""Reference counts of stored images, so a blob is written once and removed with its last post.

Images are content-addressed, so two posts with the same bytes share one blob. The count lives in
``post_images`` and changes in the same transaction as the posts that refer to it; the blob itself is
written while that transaction holds the key's lock, and removed only after the count reached zero and
committed, by a second transaction that takes the lock again and finds no row. So whatever interleaves:

- a post never commits while its blob is missing (the writer that creates the row puts the blob, and a
  remover that finds the row does nothing);
- a failure leaves at worst an unreferenced blob (a put whose transaction then rolled back, or a delete
  that failed), never a referenced blob that is gone.

The key's lock is the write lock of the whole database on SQLite (writers ``BEGIN IMMEDIATE``) and a
transaction-scoped advisory lock on PostgreSQL.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from backends.posts.blobs import BlobStore
from backends.posts.models import post_images
from meshkit.db.database import Database, dialect_insert

log = logging.getLogger(__name__)

_PG_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


class ImageRefs:
    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self._db = db
        self._blobs = blobs

    async def _lock(self, session: AsyncSession, key: str) -> None:
        if self._db.dialect == "postgresql":
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
            )

    async def attach(self, session: AsyncSession, key: str, data: bytes, content_type: str) -> None:
        """One more post refers to ``key``; stores ``data`` under it unless the blob is already there."""
        await self._lock(session, key)
        statement = (
            dialect_insert(self._db.dialect, post_images)
            .values(key=key, refs=1, content_type=content_type, size=len(data), created_at=datetime.now(UTC))
            .on_conflict_do_update(index_elements=[post_images.c.key], set_={"refs": post_images.c.refs + 1})
            .returning(post_images.c.refs)
        )
        refs = (await session.execute(statement)).scalar_one()
        # A row that existed already should have its blob; checking costs one lookup and heals a blob
        # lost outside Portico.
        if refs == 1 or not await self._blobs.exists(key):
            await self._blobs.put(key, data, content_type)

    async def detach(self, session: AsyncSession, key: str) -> bool:
        """One post fewer refers to ``key``; True when none does any more (then call :meth:`collect`)."""
        await self._lock(session, key)
        refs = (
            await session.execute(
                update(post_images)
                .where(post_images.c.key == key)
                .values(refs=post_images.c.refs - 1)
                .returning(post_images.c.refs)
            )
        ).scalar_one_or_none()
        if refs is None:
            log.error("image reference missing", extra={"image_key": key})
            return False
        if refs > 0:
            return False
        await session.execute(delete(post_images).where(post_images.c.key == key))
        return True

    async def collect(self, key: str) -> bool:
        """After the commit that dropped the last reference (or for a blob no row knows): remove the blob
        unless a post took it again; True when it was removed."""
        try:
            async with self._db.write() as session:
                await self._lock(session, key)
                taken = (
                    await session.execute(select(post_images.c.refs).where(post_images.c.key == key))
                ).first()
                if taken is None:
                    await self._blobs.delete(key)
                    return True
        except Exception:
            # The post change is committed; an unreferenced blob only costs space (the sweep retries).
            log.exception("could not remove an unreferenced image", extra={"image_key": key})
        return False

    async def unreferenced(self, keys: list[str]) -> list[str]:
        """Those of ``keys`` that no ``post_images`` row names (read without locks: a candidate list)."""
        known: set[str] = set()
        async with self._db.read() as session:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                rows = await session.execute(select(post_images.c.key).where(post_images.c.key.in_(chunk)))
                known.update(rows.scalars())
        return [key for key in keys if key not in known]
