"""Revocations of access tokens: stored in auth's database, published, and copied to Redis.

The ``revocations`` table is the source of truth. A revocation is written in the transaction that makes
it (logout, an ended login, a deleted or deactivated user) together with its event on
``portico.revocations.v1`` (through the outbox), which every verifier reads into its memory. Redis is a
fast shared copy written after the commit, best effort: a failed write never undoes the revocation, and
:class:`RedisRefill` writes every live mark again whenever a Redis server may lack them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from backends.auth import models
from backends.auth.events import REVOCATIONS
from backends.auth.fill_markers import stale_markers
from meshkit.auth.revocation import revoked_jti_key, revoked_sid_key, valid_after_key
from meshkit.auth.revocation_set import JTI, SID, USER
from meshkit.db.database import Database
from meshkit.events.outbox import Outbox
from meshkit.redis_client import RedisClient
from stubs.events.v1 import events_pb2

log = logging.getLogger(__name__)

_EVENT_TYPES = {JTI: "token.revoked", SID: "session.ended", USER: "user.sessions_ended"}


@dataclass(frozen=True)
class Mark:
    """One revocation; times are epoch seconds."""

    kind: str
    key: str
    tenant_id: str
    expires_at: float
    valid_after: float = 0.0

    def redis_key(self) -> str:
        if self.kind == JTI:
            return revoked_jti_key(self.tenant_id, self.key)
        if self.kind == SID:
            return revoked_sid_key(self.tenant_id, self.key)
        return valid_after_key(self.tenant_id, self.key)

    def redis_value(self) -> str:
        return str(self.valid_after) if self.kind == USER else "1"

    def event(self) -> events_pb2.Event:
        revocation = events_pb2.Revocation(kind=self.kind, key=self.key, tenant_id=self.tenant_id)
        revocation.expires_at.FromMicroseconds(int(self.expires_at * 1e6))
        if self.kind == USER:
            revocation.valid_after.FromMicroseconds(int(self.valid_after * 1e6))
        return REVOCATIONS.event(
            _EVENT_TYPES[self.kind], self.tenant_id, self.key, actor=None, entity=revocation
        )


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class RevocationStore:
    """Writes revocations with their events; ``token_lifetime`` is the longest an access token lives
    (its TTL plus the verifiers' leeway): a session or user revocation is kept that long."""

    def __init__(self, outbox: Outbox, token_lifetime: float) -> None:
        self._outbox = outbox
        self._lifetime = token_lifetime

    async def _record(self, session: AsyncSession, mark: Mark) -> Mark:
        now = time.time()
        await session.execute(
            models.revocations.insert().values(
                kind=mark.kind,
                key=mark.key,
                tenant_id=mark.tenant_id,
                valid_after=_dt(mark.valid_after) if mark.kind == USER else None,
                expires_at=_dt(mark.expires_at),
                created_at=_dt(now),
            )
        )
        await self._outbox.add(session, REVOCATIONS.topic, mark.event())
        return mark

    async def revoke_token(self, session: AsyncSession, tenant_id: str, jti: str, expires_at: float) -> Mark:
        """One access token, until it would have expired anyway."""
        return await self._record(session, Mark(JTI, jti, tenant_id, expires_at))

    async def end_session(self, session: AsyncSession, tenant_id: str, sid: str) -> Mark:
        """Every access token of one login (refresh-token family)."""
        return await self._record(session, Mark(SID, sid, tenant_id, time.time() + self._lifetime))

    async def end_user_sessions(self, session: AsyncSession, tenant_id: str, user_id: str) -> Mark:
        """Every access token of the user issued up to now.

        Call it holding the user's credential row (changed or locked in ``session``): logins and
        refreshes lock that row and issue their token before they commit, so every token issued from
        what the credential said before is older than the mark (see also :func:`wait_past`)."""
        now = time.time()
        return await self._record(session, Mark(USER, user_id, tenant_id, now + self._lifetime, now))

    @staticmethod
    async def live(session: AsyncSession, now: float | None = None) -> list[Mark]:
        """Every revocation that still names a possibly valid token."""
        t = models.revocations.c
        rows = await session.execute(
            select(t.kind, t.key, t.tenant_id, t.expires_at, t.valid_after).where(
                t.expires_at > _dt(time.time() if now is None else now)
            )
        )
        return [
            Mark(
                r.kind,
                r.key,
                r.tenant_id,
                r.expires_at.timestamp(),
                r.valid_after.timestamp() if r.valid_after else 0.0,
            )
            for r in rows
        ]

    @staticmethod
    async def purge(session: AsyncSession, now: float | None = None) -> int:
        """Remove revocations that name no possibly valid token any more."""
        t = models.revocations.c
        result = await session.execute(
            delete(models.revocations).where(t.expires_at <= _dt(time.time() if now is None else now))
        )
        return int(getattr(result, "rowcount", 0) or 0)


async def wait_past(mark: Mark) -> None:
    """Return once the clock has passed the second of a user's mark. A token's ``iat`` is whole seconds,
    so one issued later in that same second would die too: a user who may log in again (another role,
    reactivated) would be refused. Awaited before the transaction that holds the credential commits,
    logins and refreshes (which lock it) issue their tokens a second later."""
    await asyncio.sleep(math.floor(mark.valid_after) + 1 - time.time())


async def end_user_sessions_now(
    store: RevocationStore, redis: RedisClient, session: AsyncSession, tenant_id: str, user_id: str
) -> Mark:
    """End the user's tokens issued up to now, as a change of roles or a deactivation does: the mark
    recorded with its event, copied to Redis early (best effort), and the clock past its second before
    the caller commits and lets the credential's lockers issue tokens again (:func:`wait_past`)."""
    mark = await store.end_user_sessions(session, tenant_id, user_id)
    await copy_to_redis(redis, [mark])
    await wait_past(mark)
    return mark


async def write_marks(redis: RedisClient, marks: list[Mark]) -> None:
    """Copy ``marks`` to Redis, each expiring with what it names; raises RedisError."""
    if not marks:
        return
    now = time.time()
    async with redis.pipeline(transaction=False) as pipe:
        for mark in marks:
            ttl = int(mark.expires_at - now) + 1
            if ttl > 0:
                pipe.set(mark.redis_key(), mark.redis_value(), ex=ttl)
        await pipe.execute()


async def copy_to_redis(redis: RedisClient, marks: list[Mark]) -> bool:
    """Best effort after the commit: the database holds the revocations and :class:`RedisRefill` repairs.
    Whether Redis has them now."""
    try:
        await write_marks(redis, marks)
    except RedisError:
        log.warning("could not copy revocations to Redis; they are re-filled when it is back")
        return False
    return True


class RedisRefill:
    """Re-fills Redis from the table whenever a server may lack marks (first start, a Redis or a cluster
    node that restarted with empty memory, a replica promoted by a failover: :mod:`fill_markers`), and
    purges expired revocations now and then."""

    def __init__(
        self, db: Database, redis: RedisClient, registry: CollectorRegistry, *, interval: float = 1.0
    ) -> None:
        self._db = db
        self._redis = redis
        self._interval = interval
        self.refills = Counter(
            "portico_auth_revocation_refills_total",
            "Times Redis was found without the revocation marks and re-filled from the database.",
            registry=registry,
        )
        self._next_purge = 0.0

    async def refill_if_needed(self) -> bool:
        """True when Redis was re-filled; raises RedisError while Redis is away."""
        stale = await stale_markers(self._redis)
        if not stale:
            return False
        async with self._db.read() as session:
            marks = await RevocationStore.live(session)
        await write_marks(self._redis, marks)
        # Set last: a refill interrupted half-way is repeated.
        for marker in stale:
            await self._redis.set(marker.key, marker.run_id)
        self.refills.inc()
        log.info("revocations re-filled in Redis", extra={"marks": len(marks), "servers": len(stale)})
        return True

    async def run(self) -> None:
        while True:
            try:
                await self.refill_if_needed()
            except RedisError:
                pass  # Redis away: the verifiers' in-process sets decide meanwhile
            except Exception:
                log.exception("revocation refill failed")
            if time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + 3600
                try:
                    async with self._db.write() as session:
                        await RevocationStore.purge(session)
                except Exception:
                    log.exception("revocation purge failed")
            await asyncio.sleep(self._interval)
