"""Keeps auth in step with the users backend by consuming ``portico.users.v1``.

- ``user.updated``: the login index follows username, email, roles and ``is_active`` changes (an
  inactive user may not log in or refresh). A deactivation or a change of roles ends the user's access
  tokens as for a deletion: they carry the roles they were issued with, so a demoted admin's would keep
  admin rights until they expire. The refresh-token families live on: a refresh issues the roles the
  credential holds then, and issues them under the credential's lock, so a refresh that read the old
  roles issued a token older than the mark, and one issued after it is a second newer (see
  :mod:`backends.auth.revocations`). A name another credential still holds (that user's own change has
  not arrived yet) is parked, and handed over when the holder lets go of it (see
  :mod:`backends.auth.store`).
- ``user.deleted``: login is disabled (username and email become free again: a name parked waiting for
  them takes them, or a new registration may), every refresh-token family is revoked, and the user's
  access tokens are ended in every verifier through a stored "valid after" revocation.
Each handler runs inside the consumer's transaction, so an event is applied exactly once. Redis is not
part of that transaction's fate: the revocation commits in the database (and reaches every verifier
through the revocation stream); the Redis copy is written best effort and re-filled if lost.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from backends.auth.refresh_tokens import RefreshTokens
from backends.auth.revocations import RevocationStore, copy_to_redis, end_user_sessions_now
from backends.auth.store import CredentialStore
from meshkit.redis_client import RedisClient
from stubs.events.v1 import events_pb2

log = logging.getLogger(__name__)


class UserEventHandlers:
    def __init__(
        self,
        credentials: CredentialStore,
        refresh: RefreshTokens,
        revocations: RevocationStore,
        redis: RedisClient,
    ) -> None:
        self._credentials = credentials
        self._refresh = refresh
        self._revocations = revocations
        self._redis = redis

    async def on_user_updated(self, session: AsyncSession, event: events_pb2.Event) -> None:
        user = event.user
        before = await self._credentials.get(session, user.id, lock="update")
        parked = await self._credentials.update_profile(
            session,
            user.id,
            username=user.username,
            email=user.email,
            roles=tuple(user.roles),
            active=user.is_active,
        )
        roles_changed = before is not None and set(before.roles) != set(user.roles)
        if not user.is_active or roles_changed:
            # Past the mark's second: the user may log in again at once, with new roles or reactivated.
            await end_user_sessions_now(self._revocations, self._redis, session, event.tenant_id, user.id)
        if parked:
            # Expected now and then (events of different users are not ordered against each other) and
            # repaired by the holder's own event; logged so that a name parked for long is visible.
            log.warning(
                "login name parked: still held by another user", extra={"user_id": user.id, "fields": parked}
            )

    async def on_user_deleted(self, session: AsyncSession, event: events_pb2.Event) -> None:
        user = event.user
        # Families before the credential: a refresh locks its family, then the credential, in that order.
        revoked = await self._refresh.revoke_user(session, user.id, "user_deleted", datetime.now(UTC))
        await self._credentials.disable(session, user.id)
        mark = await self._revocations.end_user_sessions(session, event.tenant_id, user.id)
        # Early (a mark for a transaction that then rolls back only ends a deleted user's tokens) and
        # best effort: never a reason for the deletion not to commit.
        await copy_to_redis(self._redis, [mark])
        log.info("user deleted: login disabled", extra={"user_id": user.id, "families_revoked": revoked})
