"""The limiter against a real Redis: one script decides several limits atomically; Redis down → local."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from gateway.ratelimit.limiter import RedisLimiter
from gateway.ratelimit.limits import Limit
from harness.infra import InfraEnv
from infra.local import LocalRedis, free_port

pytestmark = pytest.mark.infra


@pytest.fixture
async def redis(infra: InfraEnv) -> AsyncIterator[Redis]:
    client = Redis.from_url(infra.redis_url)
    yield client
    await client.aclose()


async def test_burst_then_refusal_with_retry_after(redis: Redis) -> None:
    limiter = RedisLimiter(redis, CollectorRegistry(), fail_open=True)
    key = f"ip:{uuid.uuid4().hex}"
    limit = Limit("ip", 3, 60)
    decisions = [await limiter.check([(limit, key)]) for _ in range(4)]
    allowed = [d[0].allowed for d in decisions if d is not None]
    assert allowed == [True, True, True, False]
    last = decisions[3]
    assert last is not None
    assert last[0].retry_after == pytest.approx(20.0, abs=1.0)


async def test_a_refused_limit_charges_none(redis: Redis) -> None:
    limiter = RedisLimiter(redis, CollectorRegistry(), fail_open=True)
    ip, login = f"ip:{uuid.uuid4().hex}", f"login:{uuid.uuid4().hex}"
    loose, tight = Limit("ip", 100, 60), Limit("login", 1, 60)
    assert all(d.allowed for d in (await limiter.check([(loose, ip), (tight, login)])) or [])
    refused = await limiter.check([(loose, ip), (tight, login)])
    assert refused is not None
    assert [d.allowed for d in refused] == [True, False]
    after = await limiter.check([(loose, ip)])
    assert after is not None
    assert after[0].remaining == 98  # charged twice, not three times


async def test_redis_down_falls_back_locally_or_fails_closed(tmp_path: Path) -> None:
    server = LocalRedis(port=free_port(), data_dir=tmp_path / "redis")
    server.start()
    server.wait_ready()
    client = Redis.from_url(server.url, socket_timeout=1, socket_connect_timeout=1)
    registry = CollectorRegistry()
    open_limiter = RedisLimiter(client, registry, fail_open=True)
    closed_limiter = RedisLimiter(client, CollectorRegistry(), fail_open=False)
    limit = Limit("ip", 2, 60)
    try:
        server.stop()
        local = [await open_limiter.check([(limit, "ip:x")]) for _ in range(3)]
        assert [d[0].allowed for d in local if d is not None] == [True, True, False]  # still limiting
        assert registry.get_sample_value("portico_gateway_rate_limit_fallbacks_total") == 3
        assert await closed_limiter.check([(limit, "ip:y")]) is None
    finally:
        await client.aclose()
        server.stop()
