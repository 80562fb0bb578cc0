"""Keeps auth in step with the users backend by consuming ``portico.users.v1``.

- ``user.updated``: the login index follows username, email, roles and ``is_active`` changes (an
  inactive user may not log in or refresh; the users backend ends their access tokens itself).
- ``user.deleted``: login is disabled (username and email become free again), every refresh-token family
  is revoked, and the user's access tokens are ended in every backend through the "valid after" mark.
Each handler runs inside the consumer's transaction, so an event is applied exactly once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from backends.auth.refresh_tokens import RefreshTokens
from backends.auth.store import CredentialStore, DuplicateCredential
from meshkit.auth.revocation import end_sessions
from stubs.events.v1 import events_pb2

log = logging.getLogger(__name__)


class UserEventHandlers:
    def __init__(self, credentials: CredentialStore, refresh: RefreshTokens, redis: Redis) -> None:
        self._credentials = credentials
        self._refresh = refresh
        self._redis = redis

    async def on_user_updated(self, session: AsyncSession, event: events_pb2.Event) -> None:
        user = event.user
        try:
            await self._credentials.update_profile(
                session,
                user.id,
                username=user.username,
                email=user.email,
                roles=tuple(user.roles),
                active=user.is_active,
            )
        except DuplicateCredential as exc:
            # Another user's rename has not reached us yet (events of different users are not ordered
            # against each other). Retrying would block the partition; the user keeps logging in with
            # the old name until their next change.
            log.error(
                "login index not updated: name still taken", extra={"user_id": user.id, "field": exc.field}
            )

    async def on_user_deleted(self, session: AsyncSession, event: events_pb2.Event) -> None:
        user = event.user
        await self._credentials.disable(session, user.id)
        revoked = await self._refresh.revoke_user(session, user.id, "user_deleted", datetime.now(UTC))
        try:
            await end_sessions(self._redis, event.tenant_id, user.id)
        except RedisError:
            # Raising makes the consumer retry the event later, once Redis is back.
            log.error("could not end a deleted user's sessions; will retry", extra={"user_id": user.id})
            raise
        log.info("user deleted: login disabled", extra={"user_id": user.id, "families_revoked": revoked})
