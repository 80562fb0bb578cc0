"""The login throttle against a real Redis: lockout and back-off, per-IP limit, tenants, Redis down."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from backends.auth.lockout import Account, LoginThrottle
from harness.infra import InfraEnv
from infra.local import LocalRedis, free_port
from meshkit.identity import login_account

pytestmark = pytest.mark.infra

BASE = 0.4  # first lockout, seconds; tiny so the test can wait them out


@pytest.fixture
async def redis(infra: InfraEnv) -> AsyncIterator[Redis]:
    client = Redis.from_url(infra.redis_url)
    yield client
    await client.aclose()


def _throttle(
    redis: Redis,
    *,
    ip_limit: int = 50,
    window_seconds: float = 30,
    base_lockout_seconds: float = BASE,
    max_lockout_seconds: float = 4 * BASE,
) -> LoginThrottle:
    return LoginThrottle(
        redis,
        account_limit=5,
        ip_limit=ip_limit,
        window_seconds=window_seconds,
        base_lockout_seconds=base_lockout_seconds,
        max_lockout_seconds=max_lockout_seconds,
    )


def _name() -> Account:
    """An account no login has found: its budget is keyed by the name tried."""
    return Account(name=f"user-{uuid.uuid4().hex[:8]}")


def _ip() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


async def _fail(throttle: LoginThrottle, times: int, tenant: str, user: Account, ip: str) -> None:
    for _ in range(times):
        assert await throttle.check(tenant, user, ip)
        await throttle.failed(tenant, user, ip)


async def _wait_until_allowed(throttle: LoginThrottle, tenant: str, user: Account, ip: str) -> float:
    start = time.monotonic()
    while not await throttle.check(tenant, user, ip):
        assert time.monotonic() - start < 10, "the lockout never ended"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_five_failures_lock_the_account_then_back_off_expires(redis: Redis) -> None:
    throttle, user, ip = _throttle(redis), _name(), _ip()
    await _fail(throttle, 4, "t", user, ip)
    assert await throttle.check("t", user, ip)  # four failures: still allowed
    await throttle.failed("t", user, ip)
    assert not await throttle.check("t", user, ip)  # the sixth attempt is refused
    shouted = Account(name=login_account("t", user.name.upper()).name)  # the name as auth keys it
    assert not await throttle.check("t", shouted, ip)
    waited = await _wait_until_allowed(throttle, "t", user, ip)
    assert 0.5 * BASE < waited < 3 * BASE

    # One more failure after the lockout doubles it (6 failures: base * 2).
    await throttle.failed("t", user, ip)
    waited = await _wait_until_allowed(throttle, "t", user, ip)
    assert 1.5 * BASE < waited < 5 * BASE


async def test_refused_attempts_do_not_extend_the_lockout(redis: Redis) -> None:
    throttle, user, ip = _throttle(redis), _name(), _ip()
    await _fail(throttle, 5, "t", user, ip)
    key = LoginThrottle.account_key("t", user)

    async def attempt() -> bool:  # what the service does: a refused attempt is reported as failed too
        allowed = await throttle.check("t", user, ip)
        if not allowed:
            await throttle.failed("t", user, ip)
        return allowed

    start = time.monotonic()
    while not await attempt():
        assert time.monotonic() - start < 3 * BASE, "retries kept the account locked"
        await asyncio.sleep(0.02)
    assert time.monotonic() - start > 0.5 * BASE
    assert await redis.zcard(key) == 5  # no refused attempt was counted

    # The refusal is remembered per request (task): another request's real failure still counts.
    await throttle.failed("t", user, ip)  # the allowed attempt above turned out wrong: locked again
    assert not await asyncio.create_task(throttle.check("t", user, ip))  # refused, in another task
    await throttle.failed("t", user, ip)  # this task's last check allowed its attempt
    assert await redis.zcard(key) == 7


async def test_lockout_is_capped_and_the_set_stays_small(redis: Redis) -> None:
    throttle, user, ip = _throttle(redis, ip_limit=1000), _name(), _ip()
    for _ in range(200):  # an attacker hammering through the lockout
        await throttle.failed("t", user, ip)
    key = LoginThrottle.account_key("t", user)
    assert await redis.zcard(key) <= 5 + 3  # limit + log2(max / base) + 1: more cannot lengthen it
    assert 0 < await redis.pttl(key) <= 30_000  # expires with the window: never a permanent lockout
    waited = await _wait_until_allowed(throttle, "t", user, ip)
    assert 2 * BASE < waited < 4 * BASE + 1  # the full, capped lockout (max_lockout_seconds)


async def test_failures_age_out_of_the_window(redis: Redis) -> None:
    throttle, user, ip = (
        _throttle(redis, window_seconds=1.0, base_lockout_seconds=30, max_lockout_seconds=60),
        _name(),
        _ip(),
    )
    await _fail(throttle, 5, "t", user, ip)
    assert not await throttle.check("t", user, ip)  # locked for 30 s by the back-off...
    await asyncio.sleep(1.1)
    assert await throttle.check("t", user, ip)  # ...but the failures left the 1 s window


async def test_other_accounts_from_the_same_ip_until_the_ip_limit(redis: Redis) -> None:
    throttle, ip, other_ip = _throttle(redis, ip_limit=8), _ip(), _ip()
    locked, neighbour, third = _name(), _name(), _name()
    await _fail(throttle, 5, "t", locked, ip)
    assert not await throttle.check("t", locked, ip)
    assert await throttle.check("t", neighbour, ip)  # the account is locked, not the IP
    await _fail(throttle, 3, "t", neighbour, ip)  # 8 failures from this IP in the window
    assert not await throttle.check("t", neighbour, ip)
    assert not await throttle.check("t", third, ip)  # a fresh account from the flooding IP
    assert await throttle.check("t", third, other_ip)  # ... is fine from elsewhere
    assert await throttle.check("t", neighbour, other_ip)  # 3 failures: under the account limit


async def test_ipv6_clients_are_counted_per_64(redis: Redis) -> None:
    throttle = _throttle(redis, ip_limit=3)
    prefix = f"2001:db8:{uuid.uuid4().int % 65535:x}:1"
    for host in ("::1", "::2", "::3"):
        await throttle.failed("t", _name(), prefix + host)
    assert not await throttle.check("t", _name(), prefix + "::ffff")  # same /64
    assert await throttle.check("t", _name(), f"2001:db8:{uuid.uuid4().int % 65535:x}:2::1")


async def test_success_clears_the_account(redis: Redis) -> None:
    throttle, user, ip = _throttle(redis), _name(), _ip()
    await _fail(throttle, 4, "t", user, ip)
    await throttle.succeeded("t", user)
    await _fail(throttle, 4, "t", user, ip)
    assert await throttle.check("t", user, ip)  # 4 + 4 would have locked it without the reset


async def test_a_success_after_a_clean_check_leaves_redis_alone(redis: Redis) -> None:
    """No failures found by the request's check: nothing to clear, no call. A failure another attempt
    counts meanwhile stays (stricter); this request's own failure is cleared as before."""
    throttle, user, ip = _throttle(redis), _name(), _ip()
    key = throttle.account_key("t", user)
    assert await throttle.check("t", user, ip)
    await asyncio.create_task(throttle.failed("t", user, ip))  # a concurrent attempt, its own task
    await throttle.succeeded("t", user)
    assert await redis.zcard(key) == 1
    assert await throttle.check("t", user, ip)  # found one failure now
    await throttle.succeeded("t", user)
    assert await redis.exists(key) == 0
    assert await throttle.check("t", user, ip)
    await throttle.failed("t", user, ip)  # counted after a clean check in the same task
    await throttle.succeeded("t", user)
    assert await redis.exists(key) == 0


async def test_keys_are_tenant_prefixed(redis: Redis) -> None:
    throttle, user = _throttle(redis), _name()
    await _fail(throttle, 5, "tenant-a", user, _ip())
    assert not await throttle.check("tenant-a", user, _ip())
    assert await throttle.check("tenant-b", user, _ip())  # the same username in another tenant
    assert await redis.exists(f"portico:auth:fail:acct:{{tenant-a}}:name:{user.name}") == 1
    assert await redis.exists(f"portico:auth:fail:acct:{{tenant-b}}:name:{user.name}") == 0


async def test_a_name_that_looks_like_a_user_id_does_not_spend_that_account_budget(redis: Redis) -> None:
    throttle, user_id, ip = _throttle(redis), str(uuid.uuid4()), _ip()
    await _fail(throttle, 5, "t", Account(name=user_id), ip)
    assert not await throttle.check("t", Account(name=user_id), ip)
    assert await throttle.check("t", Account(user_id=user_id), ip)


async def test_no_key_grows_with_what_the_client_sends(redis: Redis) -> None:
    huge = "a" * 256 * 1024
    tenant = f"{huge}-{uuid.uuid4().hex}"
    throttle = _throttle(redis)
    for account in (Account(name=huge), Account(user_id=huge)):
        await throttle.failed(tenant, account, "not-an-address-" + huge)
        await throttle.failed(tenant, account, "fe80::1%" + huge)
        assert await throttle.check(tenant, account, _ip())
    lengths = [len(key) async for key in redis.scan_iter(match="portico:auth:fail:*", count=1000)]
    assert lengths
    assert max(lengths) <= 160  # the prefix, a tenant part and an account part of at most 64 each


async def test_redis_down_fails_open_without_raising(tmp_path: Path) -> None:
    server = LocalRedis(port=free_port(), data_dir=tmp_path / "r")
    registry = CollectorRegistry()
    with server:
        client = Redis.from_url(server.url)
        throttle = LoginThrottle(client, account_limit=1, registry=registry)
        user, ip = _name(), _ip()
        await throttle.failed("t", user, ip)
        assert not await throttle.check("t", user, ip)  # working: one failure locks at limit 1
    try:
        start = time.monotonic()
        assert await throttle.check("t", user, ip)  # Redis gone: the attempt may proceed
        await throttle.failed("t", user, ip)
        await throttle.succeeded("t", user)
        assert time.monotonic() - start < 3  # bounded by the throttle's timeout, not redis-py's retries
        assert throttle.errors == 3
        assert registry.get_sample_value("portico_login_throttle_errors_total") == 3
    finally:
        await client.aclose()
