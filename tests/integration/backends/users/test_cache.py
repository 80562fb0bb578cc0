"""The users read-through cache against a real Redis: hits, invalidation races, stampedes, Redis down."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from backends.users.cache import UserCache
from harness.infra import InfraEnv
from infra.local import LocalRedis, free_port
from stubs.users.v1 import users_pb2

pytestmark = pytest.mark.infra


@pytest.fixture
async def redis(infra: InfraEnv) -> AsyncIterator[Redis]:
    client = Redis.from_url(infra.redis_url)
    yield client
    await client.aclose()


def _count(registry: CollectorRegistry, result: str) -> float:
    return (
        registry.get_sample_value("portico_cache_requests_total", {"cache": "users", "result": result}) or 0.0
    )


def _user(name: str) -> users_pb2.User:
    return users_pb2.User(id=str(uuid.uuid4()), tenant_id="t", username=name, email=f"{name}@example.com")


async def test_hit_after_miss_and_invalidation(redis: Redis) -> None:
    registry = CollectorRegistry()
    cache = UserCache(redis, registry)
    user = _user("ann")
    loads = 0

    async def load() -> users_pb2.User:
        nonlocal loads
        loads += 1
        return user

    assert await cache.get("t", user.id, load) == user
    assert await cache.get("t", user.id, load) == user
    assert (loads, _count(registry, "miss"), _count(registry, "hit")) == (1, 1, 1)
    await cache.invalidate("t", user.id)
    await cache.get("t", user.id, load)
    assert loads == 2
    # Tenant-prefixed keys: the same id in another tenant is another entry.
    assert "{t:" in UserCache.key("t", user.id)
    assert UserCache.key("t", user.id) != UserCache.key("u", user.id)


async def test_a_slow_load_cannot_write_back_a_stale_user(redis: Redis) -> None:
    cache = UserCache(redis, CollectorRegistry())
    old, new = _user("old"), _user("new")
    new.id = old.id
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow_load() -> users_pb2.User:
        started.set()
        await finish.wait()
        return old  # what the database said before the change committed

    reader = asyncio.create_task(cache.get("t", old.id, slow_load))
    await started.wait()
    await cache.invalidate("t", old.id)  # the change commits while the read is in flight
    finish.set()
    assert await reader == old

    async def fresh_load() -> users_pb2.User:
        return new

    assert await cache.get("t", old.id, fresh_load) == new  # the stale value was not cached


async def test_a_read_after_a_commit_does_not_join_a_load_from_before_it(redis: Redis) -> None:
    """A GetUser right after DeleteUser committed must not share the answer of a load that read the row
    before the commit (auth asks this at every login to refuse a deleted user at once)."""
    cache = UserCache(redis, CollectorRegistry())
    user = _user("gone")
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow_load() -> users_pb2.User:
        started.set()
        await finish.wait()
        return user  # read before the deletion committed

    async def after_the_commit() -> None:
        return None  # the row is deleted

    before = asyncio.create_task(cache.get("t", user.id, slow_load))
    await started.wait()
    await cache.invalidate("t", user.id)  # the deletion commits while the first load is in flight
    after = asyncio.create_task(cache.get("t", user.id, after_the_commit))
    await asyncio.sleep(0)  # let the second read start before the first load ends
    finish.set()
    assert await before == user
    assert await after is None


async def test_concurrent_misses_load_once(redis: Redis) -> None:
    registry = CollectorRegistry()
    cache = UserCache(redis, registry)
    user = _user("bee")
    loads = 0

    async def load() -> users_pb2.User:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.05)
        return user

    results = await asyncio.gather(*(cache.get("t", user.id, load) for _ in range(50)))
    assert all(r == user for r in results)
    assert loads == 1


async def test_unknown_users_are_cached_as_absent(redis: Redis) -> None:
    cache = UserCache(redis, CollectorRegistry())
    loads = 0

    async def load() -> None:
        nonlocal loads
        loads += 1

    missing = str(uuid.uuid4())
    assert await cache.get("t", missing, load) is None
    assert await cache.get("t", missing, load) is None
    assert loads == 1


async def test_redis_down_bypasses_the_cache(tmp_path: Path) -> None:
    server = LocalRedis(port=free_port(), data_dir=tmp_path / "redis")
    server.start()
    server.wait_ready()
    client = Redis.from_url(server.url, socket_timeout=1, socket_connect_timeout=1)
    registry = CollectorRegistry()
    cache = UserCache(client, registry)
    user = _user("cat")

    async def load() -> users_pb2.User:
        return user

    try:
        await cache.get("t", user.id, load)
        server.stop()
        assert await cache.get("t", user.id, load) == user  # served from the database, no error
        await cache.invalidate("t", user.id)  # logged and counted, not raised
        assert _count(registry, "bypass") == 1
        errors = registry.get_sample_value("portico_cache_invalidation_errors_total", {"cache": "users"})
        assert errors == 1
    finally:
        await client.aclose()
        server.stop()
