"""Data access for posts: the same SQLAlchemy Core statements on SQLite and PostgreSQL.

Pure data access: the service validates, authorizes and records events, and calls these inside its own
transaction (``Database.write()``) so the outbox row commits with the change. A post is *visible* when it
is not deleted and its author has not been deleted; only visible posts are read, listed or changed.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

from sqlalchemy import ColumnElement, Row, and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backends.posts.models import deleted_authors, posts
from meshkit.db.database import dialect_insert, supported_dialect

__all__ = ["UPDATABLE", "PostRecord", "PostStore"]

UPDATABLE = frozenset({"title", "content", "image_key", "image_type"})
_NEWEST_FIRST = (posts.c.created_at.desc(), posts.c.id.desc())
_AnyRow: TypeAlias = Row[*tuple[Any, ...]]

_AUTHOR_DELETED = exists().where(
    deleted_authors.c.tenant_id == posts.c.tenant_id, deleted_authors.c.author_id == posts.c.author_id
)
_VISIBLE: ColumnElement[bool] = and_(posts.c.deleted_at.is_(None), ~_AUTHOR_DELETED)


@dataclass(frozen=True)
class PostRecord:
    id: str
    tenant_id: str
    author_id: str
    title: str
    content: str
    image_key: str | None
    image_type: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


def _record(row: _AnyRow) -> PostRecord:
    return PostRecord(**{column.name: getattr(row, column.name) for column in posts.c})


def _visible(tenant_id: str, post_id: str) -> ColumnElement[bool]:
    return and_(posts.c.tenant_id == tenant_id, posts.c.id == post_id, _VISIBLE)


class PostStore:
    """Posts of all tenants in one database (``dialect``: ``sqlite`` or ``postgresql``)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = supported_dialect(dialect)

    async def create(
        self,
        session: AsyncSession,
        *,
        tenant_id: str,
        author_id: str,
        title: str,
        content: str,
        image_key: str | None = None,
        image_type: str | None = None,
    ) -> PostRecord:
        now = datetime.now(UTC)
        values = {
            "id": str(uuid.uuid4()),
            "tenant_id": tenant_id,
            "author_id": author_id,
            "title": title,
            "content": content,
            "image_key": image_key,
            "image_type": image_type,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
        }
        row = (await session.execute(posts.insert().values(values).returning(*posts.c))).one()
        return _record(row)

    async def get(
        self, session: AsyncSession, tenant_id: str, post_id: str, *, for_update: bool = False
    ) -> PostRecord | None:
        """A visible post; ``for_update`` locks its row until the transaction ends (PostgreSQL)."""
        statement = select(*posts.c).where(_visible(tenant_id, post_id))
        if for_update:
            statement = statement.with_for_update(of=posts)
        row = (await session.execute(statement)).first()
        return _record(row) if row else None

    async def list(
        self,
        session: AsyncSession,
        tenant_id: str,
        *,
        author_id: str | None = None,
        page: int,
        page_size: int,
    ) -> tuple[builtins.list[PostRecord], int]:
        """One page of the tenant's visible posts, newest first, and how many there are in all."""
        if page < 1 or page_size < 1:
            raise ValueError("page and page_size start at 1")
        where = and_(posts.c.tenant_id == tenant_id, _VISIBLE)
        if author_id is not None:
            where = and_(where, posts.c.author_id == author_id)
        total = (await session.execute(select(func.count()).select_from(posts).where(where))).scalar_one()
        rows = await session.execute(
            select(*posts.c)
            .where(where)
            .order_by(*_NEWEST_FIRST)
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        return [_record(row) for row in rows], int(total)

    async def update(
        self, session: AsyncSession, tenant_id: str, post_id: str, changes: Mapping[str, object]
    ) -> PostRecord | None:
        """Apply ``changes`` (keys from :data:`UPDATABLE`) to a visible post; None when there is none."""
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        return await self._update_visible(
            session, tenant_id, post_id, {**changes, "updated_at": datetime.now(UTC)}
        )

    async def delete(self, session: AsyncSession, tenant_id: str, post_id: str) -> PostRecord | None:
        """Mark a visible post deleted and drop its image reference; returns the row as it is now."""
        now = datetime.now(UTC)
        return await self._update_visible(
            session,
            tenant_id,
            post_id,
            {"deleted_at": now, "updated_at": now, "image_key": None, "image_type": None},
        )

    async def hide_author(self, session: AsyncSession, tenant_id: str, author_id: str) -> bool:
        """Leave the author's posts out of every read from now on; False when that was already so."""
        result = await session.execute(
            dialect_insert(self.dialect, deleted_authors)
            .values(tenant_id=tenant_id, author_id=author_id, deleted_at=datetime.now(UTC))
            .on_conflict_do_nothing()
            .returning(deleted_authors.c.author_id)
        )
        return result.first() is not None

    async def count_by_author(self, session: AsyncSession, tenant_id: str, author_id: str) -> int:
        """All posts the author ever wrote, hidden and deleted ones included (audit)."""
        statement = select(func.count()).where(posts.c.tenant_id == tenant_id, posts.c.author_id == author_id)
        return int((await session.execute(statement)).scalar_one())

    async def _update_visible(
        self, session: AsyncSession, tenant_id: str, post_id: str, values: Mapping[str, object]
    ) -> PostRecord | None:
        row = (
            await session.execute(
                update(posts).where(_visible(tenant_id, post_id)).values(dict(values)).returning(*posts.c)
            )
        ).first()
        return _record(row) if row else None
