"""Every use of Redis works on a real 3-master Redis Cluster and through Sentinel, with clients made by the
kit's factory: the gateway's limits with a token's revocation marks, the revocation check (with keys read
ahead from another slot), the users cache and auth's lockout. None of them falls back: a key pair that
crossed slots would fail on the cluster and be counted as an outage here."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter
from redis.crc import key_slot

from backends.auth.lockout import Account, LoginThrottle
from backends.auth.revocations import Mark, write_marks
from backends.users.cache import UserCache
from gateway.edge_gate import gate
from gateway.ratelimit.edge import ip_tag, user_key
from gateway.ratelimit.limiter import RedisLimiter
from gateway.ratelimit.limits import Limit
from infra.procs import free_port, free_ports
from infra.redis_topologies import LocalRedisCluster
from meshkit.auth.revocation import (
    RevocationChecker,
    RevocationUnknown,
    end_sessions,
    revocation_keys,
    revoke_jti,
    revoke_session,
)
from meshkit.auth.revocation_set import JTI, SID, USER, RevocationSet
from meshkit.auth.tokens import Principal
from meshkit.config.stores import RedisSettings
from meshkit.redis_client import RedisClient, connect, is_cluster
from meshkit.rpc.probes import redis_dependency
from stubs.users.v1 import users_pb2

pytestmark = pytest.mark.infra


def _principal(tenant: str = "acme", *, issued_at: float | None = None) -> Principal:
    now = time.time() if issued_at is None else issued_at
    return Principal(
        str(uuid.uuid4()),
        tenant,
        "",
        frozenset({"user"}),
        uuid.uuid4().hex,
        now,
        now + 600,
        "t",
        str(uuid.uuid4()),
    )


def _checker(
    redis: RedisClient, *, ready: bool = False, registry: CollectorRegistry | None = None
) -> RevocationChecker:
    local = RevocationSet()
    local.ready = ready
    errors = Counter("revocation_errors", "", registry=registry or CollectorRegistry())
    return RevocationChecker(redis, fail_open=False, errors=errors, local=local)


def _fallbacks(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("portico_gateway_rate_limit_fallbacks_total") or 0.0


async def test_the_limits_and_the_marks_are_decided_in_one_request(redis: RedisClient) -> None:
    registry = CollectorRegistry()
    limiter = RedisLimiter(redis, registry, fail_open=False)
    ip, user_limit, ip_limit = f"10.9.{uuid.uuid4().int % 250}.1", Limit("user", 2, 60), Limit("ip", 100, 60)
    principal = _principal()
    limits = [(ip_limit, f"ip:{ip_tag(ip)}"), (user_limit, user_key(principal))]
    # On the cluster the request spans two slots: the IP's, and the tenant's (the user's limit, the marks).
    ip_slot, tenant_slot = (key_slot(f"portico:rl:{key}".encode()) for _, key in limits)
    assert ip_slot != tenant_slot == key_slot(revocation_keys(principal)[0].encode())

    checks = _checker(redis)
    answers = [await gate(limiter, checks, limits, limits[:1], principal) for _ in range(3)]
    assert [[d.allowed for d in a.decisions or []] for a in answers] == [[True, True]] * 2 + [[True, False]]
    assert not any(a.revoked or a.unknown for a in answers)

    await revoke_jti(redis, principal.tenant_id, principal.jti, principal.expires_at)
    revoked = await gate(limiter, checks, limits, limits[:1], principal)
    assert revoked.revoked
    assert [d.limit.name for d in revoked.decisions or []] == ["ip"]  # charged as a refusal: its IP only
    assert _fallbacks(registry) == 0


async def test_a_revoked_token_is_refused_and_keys_of_other_slots_come_with_the_marks(
    redis: RedisClient,
) -> None:
    registry = CollectorRegistry()
    checks = _checker(redis, registry=registry)
    token, ended, logged_out = _principal(), _principal(), _principal()
    entry = UserCache.read_keys(token.tenant_id, token.sub)  # the users cache: its own slot on a cluster
    await redis.set(entry[0], b"cached")
    assert await checks.check(token, entry) == (False, [b"cached", None])

    await revoke_jti(redis, token.tenant_id, token.jti, token.expires_at)
    await end_sessions(redis, ended.tenant_id, ended.sub)
    await revoke_session(redis, logged_out.tenant_id, logged_out.session_id, 60)
    assert [await checks.is_revoked(p) for p in (token, ended, logged_out)] == [True, True, True]
    assert not await checks.is_revoked(_principal())
    assert registry.get_sample_value("revocation_errors_total") == 0


async def test_auths_copy_of_its_marks_and_the_readiness_ping(redis: RedisClient) -> None:
    """auth writes marks of several tenants (several slots) in one pipeline; /ready's probe pings."""
    now = time.time()
    token, ended, user = _principal("t1"), _principal("t2"), _principal("t3", issued_at=now - 10)
    await write_marks(
        redis,
        [
            Mark(JTI, token.jti, token.tenant_id, now + 60),
            Mark(SID, ended.session_id, ended.tenant_id, now + 60),
            Mark(USER, user.sub, user.tenant_id, now + 60, valid_after=now),
        ],
    )
    checks = _checker(redis)
    assert [await checks.is_revoked(p) for p in (token, ended, user)] == [True, True, True]
    assert await redis_dependency(redis).check()


async def test_the_users_cache_fills_hits_and_invalidates(redis: RedisClient) -> None:
    registry = CollectorRegistry()
    cache = UserCache(redis, registry)
    user = users_pb2.User(id=str(uuid.uuid4()), tenant_id="acme", username="ann", email="ann@example.com")
    loads = 0

    async def load() -> users_pb2.User:
        nonlocal loads
        loads += 1
        return user

    assert [await cache.get("acme", user.id, load) for _ in range(2)] == [user, user]
    await cache.invalidate("acme", user.id)  # a MULTI of three commands on one slot
    assert await cache.get("acme", user.id, load) == user
    sample = {
        result: registry.get_sample_value(
            "portico_cache_requests_total", {"cache": "users", "result": result}
        )
        for result in ("hit", "miss", "bypass")
    }
    assert (loads, sample) == (2, {"hit": 1.0, "miss": 2.0, "bypass": 0.0})
    # Never counted: the invalidation reached Redis.
    assert registry.get_sample_value("portico_cache_invalidation_errors_total", {"cache": "users"}) is None


async def test_the_lockout_counts_the_account_and_the_ip(redis: RedisClient) -> None:
    throttle = LoginThrottle(redis, account_limit=3, ip_limit=5, window_seconds=30, base_lockout_seconds=30)
    ip, victim, other = (
        f"10.8.{uuid.uuid4().int % 250}.2",
        Account(name=uuid.uuid4().hex),
        Account(user_id="u"),
    )
    if is_cluster(redis):  # the account's set (tenant tag) and the IP's are in different slots
        keys = throttle.account_key("acme", victim), throttle.ip_key(ip) or ""
        assert key_slot(keys[0].encode()) != key_slot(keys[1].encode())
    for _ in range(3):
        assert await throttle.check("acme", victim, ip)
        await throttle.failed("acme", victim, ip)
    assert not await throttle.check("acme", victim, ip)  # the account is locked
    assert await throttle.check("other-tenant", victim, ip)  # the same name elsewhere is not
    for _ in range(2):
        await throttle.failed("acme", Account(name=uuid.uuid4().hex), ip)
    assert not await throttle.check("acme", other, ip)  # the IP has had its 5 failures
    await throttle.succeeded("acme", victim)
    assert throttle.errors == 0


async def test_a_cluster_that_goes_away_makes_revocation_unknown_never_allowed(tmp_path: Path) -> None:
    cluster = LocalRedisCluster(ports=free_ports(6), data_dir=tmp_path / "cluster")
    with cluster:
        redis = connect(RedisSettings(redis_url=cluster.url, redis_mode="cluster"))
        checks, token = _checker(redis), _principal()
        await revoke_jti(redis, token.tenant_id, token.jti, token.expires_at)
        assert await checks.is_revoked(token)
    try:
        with pytest.raises(RevocationUnknown):
            await checks.is_revoked(_principal())  # the cluster is gone and no loaded set can say
        loaded = _checker(redis, ready=True)
        loaded.local.add(JTI, token.jti, token.expires_at)
        assert await loaded.is_revoked(token)  # the set decides alone: the revoked token stays refused
        assert not await loaded.is_revoked(_principal())
    finally:
        await redis.aclose()


async def test_sentinels_that_cannot_be_reached_make_revocation_unknown() -> None:
    settings = RedisSettings(redis_mode="sentinel", redis_sentinels=f"127.0.0.1:{free_port()}")
    redis = connect(settings)
    try:
        with pytest.raises(RevocationUnknown):
            await _checker(redis).is_revoked(_principal())
    finally:
        await redis.aclose()
