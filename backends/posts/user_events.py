"""Keeps posts in step with the users backend by consuming ``portico.users.v1``.

``user.deleted``: the user's posts disappear from reads and lists but stay stored (audit), by recording
the author in ``posts_deleted_authors``. The handler runs inside the consumer's transaction, which also
records the event id, and recording an author twice changes nothing: the event is applied once.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from backends.posts.store import PostStore
from stubs.events.v1 import events_pb2

log = logging.getLogger(__name__)


class UserEventHandlers:
    def __init__(self, store: PostStore) -> None:
        self._store = store

    async def on_user_deleted(self, session: AsyncSession, event: events_pb2.Event) -> None:
        author_id = event.user.id or event.entity_id
        if await self._store.hide_author(session, event.tenant_id, author_id):
            log.info("user deleted: their posts are hidden", extra={"user_id": author_id})
