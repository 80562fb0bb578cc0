"""Revocations in auth's database on SQLite and PostgreSQL: written with their events, applied by the
``user.deleted`` and ``user.updated`` handlers even while Redis is down, and copied back to a Redis that
lost its memory."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy import select, text

from backends.auth import models
from backends.auth.refresh_tokens import RefreshTokens
from backends.auth.revocations import Mark, RedisRefill, RevocationStore
from backends.auth.store import CredentialStore
from backends.auth.user_events import UserEventHandlers
from harness.events import eventually
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
        assert await refill.refill_if_needed()
        marks = revoked_jti_key("t", jti), revoked_sid_key("t", sid), valid_after_key("t", user)
        assert await redis.exists(*marks) == 3
        assert 0 < await redis.ttl(revoked_jti_key("t", jti)) <= 61
        assert await redis.exists(FILLED_KEY)
        assert not await refill.refill_if_needed()  # already filled: nothing to do

        # A replica promoted by a failover holds the marker its old master was given, with that server's
        # run id, and may lack the master's last marks: it is filled again.
        await redis.set(FILLED_KEY, "0" * 40)
        await redis.delete(revoked_jti_key("t", jti))
        assert await refill.refill_if_needed()
        assert await redis.exists(revoked_jti_key("t", jti))
        assert (await redis.get(FILLED_KEY)).decode() == (await redis.info("server"))["run_id"]
    finally:
        await redis.aclose()


async def _credential(db: Database, tenant: str, user_id: str, roles: tuple[str, ...]) -> None:
    async with db.write() as session:
        await CredentialStore(db.dialect).add(
            session,
            user_id=user_id,
            tenant_id=tenant,
            username=f"u{user_id[:8]}",
            email=f"u{user_id[:8]}@example.com",
            password_hash=HASH,
            roles=roles,
        )


def _updated(tenant: str, user_id: str, roles: list[str]) -> events_pb2.Event:
    event = events_pb2.Event(event_id=str(uuid.uuid4()), type="user.updated", tenant_id=tenant)
    event.user.CopyFrom(
        users_pb2.User(
            id=user_id,
            tenant_id=tenant,
            username=f"u{user_id[:8]}",
            email=f"u{user_id[:8]}@example.com",
            roles=roles,
            is_active=True,
        )
    )
    return event


def _handlers(db: Database, redis: Redis) -> UserEventHandlers:
    refresh = RefreshTokens(
        idle=timedelta(days=1), absolute=timedelta(days=2), reuse_grace=timedelta(seconds=1)
    )
    return UserEventHandlers(CredentialStore(db.dialect), refresh, store(), redis)


async def test_a_change_of_roles_ends_the_users_sessions_and_the_same_roles_do_not(db: Database) -> None:
    tenant, user_id = f"t-{secrets.token_hex(6)}", str(uuid.uuid4())
    await _credential(db, tenant, user_id, ("admin", "user"))
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    handlers = _handlers(db, down)
    try:
        async with db.write() as session:
            await handlers.on_user_updated(session, _updated(tenant, user_id, ["user"]))
        # A login right after the change gets a whole second (iat) later than the mark: it lives.
        [mark] = [m for m in await _live(db) if m.key == user_id]
        assert int(time.time()) > mark.valid_after
        async with db.write() as session:  # the same roles, in another order: nobody is logged out
            await handlers.on_user_updated(session, _updated(tenant, user_id, ["user"]))
        async with db.write() as session:
            await handlers.on_user_updated(session, _updated(tenant, user_id, ["admin", "user"]))
        async with db.write() as session:
            await handlers.on_user_updated(session, _updated(tenant, user_id, ["user", "admin"]))
    finally:
        await down.aclose()
    assert [r.kind for r in await revocation_events(db, user_id)] == ["user", "user"]


async def _live(db: Database) -> list[Mark]:
    async with db.read() as session:
        return await RevocationStore.live(session)


# PostgreSQL only: SQLite runs one write transaction at a time, so there is nothing to interleave.
@pytest.mark.parametrize("db", [pytest.param("postgresql", marks=pytest.mark.infra)], indirect=True)
async def test_a_login_reading_the_credential_waits_for_a_role_change_in_flight(db: Database) -> None:
    """A login or refresh reads the roles it issues under the credential's lock: while the change's
    transaction (and its "valid after" mark) is open it waits, then issues the new roles — never the
    old ones in a token newer than the mark."""
    tenant, user_id = f"t-{secrets.token_hex(6)}", str(uuid.uuid4())
    await _credential(db, tenant, user_id, ("admin", "user"))
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    handlers, applied, release = _handlers(db, down), asyncio.Event(), asyncio.Event()

    async def change_roles() -> None:
        async with db.write() as session:
            await handlers.on_user_updated(session, _updated(tenant, user_id, ["user"]))
            applied.set()
            await release.wait()  # the consumer's transaction is still open

    async def login_reads() -> tuple[str, ...]:
        async with db.write() as session:
            credential = await CredentialStore(db.dialect).get(session, user_id, lock="update")
            assert credential is not None
            return credential.roles

    async def login_waits() -> bool:
        async with db.read() as session:
            waiting = await session.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            return bool(waiting.scalar_one())

    try:
        change = asyncio.create_task(change_roles())
        await asyncio.wait_for(applied.wait(), 30)
        login = asyncio.create_task(login_reads())
        await eventually(login_waits, timeout=30, what="the login to wait for the credential's lock")
        release.set()
        await change
        assert await login == ("user",)
    finally:
        release.set()
        await down.aclose()
