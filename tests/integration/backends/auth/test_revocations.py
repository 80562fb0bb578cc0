"""Revocations in auth's database on SQLite and PostgreSQL: written with their events, applied by the
``user.deleted`` handler even while Redis is down, and copied back to a Redis that lost its memory."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy import select

from backends.auth import models
from backends.auth.refresh_tokens import RefreshTokens
from backends.auth.revocations import RedisRefill, RevocationStore
from backends.auth.store import CredentialStore
from backends.auth.user_events import UserEventHandlers
from harness.stores.auth import DIALECTS, auth_database
from infra.local import LocalRedis
from infra.procs import free_port
from meshkit.auth.revocation import FILLED_KEY, revoked_jti_key, revoked_sid_key, valid_after_key
from meshkit.auth.revocation_feed import REVOCATIONS_TOPIC
from meshkit.db.database import Database
from meshkit.events.outbox import Outbox
from stubs.events.v1 import events_pb2
from stubs.users.v1 import users_pb2

pytestmark = pytest.mark.infra

LIFETIME = 600.0
HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"


@pytest.fixture(scope="module", params=DIALECTS)
async def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    async with auth_database(request, tmp_path_factory.mktemp("auth-revocations")) as database:
        yield database


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    """A Redis of this module's own: the refill test empties it."""
    server = LocalRedis(port=free_port(), data_dir=tmp_path_factory.mktemp("revocations-redis"))
    server.start()
    server.wait_ready(timeout=30)
    yield server
    server.stop()


def store() -> RevocationStore:
    return RevocationStore(Outbox(models.outbox), LIFETIME)


async def revocation_events(db: Database, key: str) -> list[events_pb2.Revocation]:
    async with db.read() as session:
        rows = await session.execute(
            select(models.outbox.c.payload).where(
                models.outbox.c.topic == REVOCATIONS_TOPIC, models.outbox.c.key == key
            )
        )
        events = [events_pb2.Event.FromString(payload) for payload in rows.scalars()]
    return [event.revocation for event in events]


async def test_a_revocation_commits_with_its_event_and_stays_live_until_it_expires(db: Database) -> None:
    jti, sid, user = uuid.uuid4().hex, str(uuid.uuid4()), str(uuid.uuid4())
    now = time.time()
    async with db.write() as session:
        await store().revoke_token(session, "t", jti, now + 60)
        await store().end_session(session, "t", sid)
        await store().end_user_sessions(session, "t", user)
    async with db.read() as session:
        live = {mark.key: mark for mark in await RevocationStore.live(session)}
        later = {mark.key for mark in await RevocationStore.live(session, now + 120)}
    assert live[jti].kind == "jti"
    assert live[sid].kind == "sid"
    assert live[user].valid_after == pytest.approx(now, abs=5)
    assert jti not in later  # expired with its token
    assert {sid, user} <= later
    [published] = await revocation_events(db, user)
    assert (published.kind, published.key, published.tenant_id) == ("user", user, "t")
    async with db.write() as session:
        assert await RevocationStore.purge(session, now + LIFETIME + 10) >= 3


async def test_user_deleted_commits_while_redis_is_down(db: Database) -> None:
    """Redis is not part of the deletion's fate: the credential is disabled, its logins revoked, the
    "valid after" stored and published, and the name is free for a new registration."""
    tenant, user_id = f"t-{secrets.token_hex(6)}", str(uuid.uuid4())
    credentials = CredentialStore(db.dialect)
    refresh = RefreshTokens(
        idle=timedelta(days=1), absolute=timedelta(days=2), reuse_grace=timedelta(seconds=1)
    )
    async with db.write() as session:
        await credentials.add(
            session,
            user_id=user_id,
            tenant_id=tenant,
            username="dora",
            email="dora@example.com",
            password_hash=HASH,
            roles=("user",),
        )
        await refresh.start_family(session, user_id=user_id, tenant_id=tenant, now=datetime.now(UTC))
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    handlers = UserEventHandlers(credentials, refresh, store(), down)
    event = events_pb2.Event(event_id=str(uuid.uuid4()), type="user.deleted", tenant_id=tenant)
    event.user.CopyFrom(
        users_pb2.User(id=user_id, tenant_id=tenant, username="dora", email="dora@example.com")
    )
    try:
        async with db.write() as session:
            await handlers.on_user_deleted(session, event)
    finally:
        await down.aclose()
    async with db.read() as session:
        assert await credentials.find_for_login(session, tenant, "dora") is None
        families = await session.execute(
            select(models.refresh_families.c.revoked_at).where(models.refresh_families.c.user_id == user_id)
        )
        assert all(revoked is not None for revoked in families.scalars())
        assert user_id in {mark.key for mark in await RevocationStore.live(session)}
    assert [r.kind for r in await revocation_events(db, user_id)] == ["user"]
    async with db.write() as session:  # the name is free again
        await credentials.add(
            session,
            user_id=str(uuid.uuid4()),
            tenant_id=tenant,
            username="dora",
            email="dora@example.com",
            password_hash=HASH,
            roles=("user",),
        )


async def test_an_empty_redis_is_refilled_from_the_table(db: Database, own_redis: LocalRedis) -> None:
    jti, sid, user = uuid.uuid4().hex, str(uuid.uuid4()), str(uuid.uuid4())
    async with db.write() as session:
        await store().revoke_token(session, "t", jti, time.time() + 60)
        await store().end_session(session, "t", sid)
        await store().end_user_sessions(session, "t", user)
    redis = Redis.from_url(own_redis.url)
    try:
        await redis.flushdb()  # a restart without persistence
        refill = RedisRefill(db, redis, CollectorRegistry())
        assert await refill.refill_if_empty()
        assert await redis.exists(revoked_jti_key(jti), revoked_sid_key(sid), valid_after_key("t", user)) == 3
        assert 0 < await redis.ttl(revoked_jti_key(jti)) <= 61
        assert await redis.exists(FILLED_KEY)
        assert not await refill.refill_if_empty()  # already filled: nothing to do
    finally:
        await redis.aclose()
