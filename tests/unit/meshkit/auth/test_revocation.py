"""The revocation checker: the in-process set first, then Redis; never a silent pass when neither can say."""

from __future__ import annotations

import time
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from meshkit.auth.revocation import (
    RevocationChecker,
    RevocationUnknown,
    revoked_jti_key,
    revoked_sid_key,
    valid_after_key,
)
from meshkit.auth.revocation_set import JTI, RevocationSet
from meshkit.auth.tokens import Principal


class FakeRedis:
    """MGET over a dict, or down."""

    def __init__(self, values: dict[str, str] | None = None, *, down: bool = False) -> None:
        self.values = values or {}
        self.down = down
        self.calls = 0

    async def mget(self, *keys: str) -> list[str | None]:
        self.calls += 1
        if self.down:
            raise RedisConnectionError("connection refused")
        return [self.values.get(key) for key in keys]


def principal(jti: str = "j1") -> Principal:
    now = time.time()
    return Principal("u1", "t", "", frozenset({"user"}), jti, now, now + 600, "tok", session_id="s1")


def checker(redis: FakeRedis, *, ready: bool = False, fail_open: bool = False) -> RevocationChecker:
    errors = Counter("errors", "", registry=CollectorRegistry())
    local = RevocationSet()
    local.ready = ready
    return RevocationChecker(cast(Redis, cast(Any, redis)), fail_open=fail_open, errors=errors, local=local)


async def test_the_in_process_set_refuses_without_asking_redis() -> None:
    redis = FakeRedis(down=True)
    check = checker(redis)
    check.local.add(JTI, "j1", time.time() + 60)
    assert await check.is_revoked(principal("j1"))
    assert redis.calls == 0


async def test_redis_marks_refuse_even_when_the_set_does_not_know_them() -> None:
    now = time.time()
    assert await checker(FakeRedis({revoked_jti_key("t", "j1"): "1"}), ready=True).is_revoked(principal("j1"))
    assert await checker(FakeRedis({revoked_sid_key("t", "s1"): "1"}), ready=True).is_revoked(principal())
    after = FakeRedis({valid_after_key("t", "u1"): str(now + 1)})
    assert await checker(after, ready=True).is_revoked(principal())
    assert not await checker(FakeRedis(), ready=True).is_revoked(principal())


async def test_redis_down_and_the_set_loaded_the_set_decides() -> None:
    check = checker(FakeRedis(down=True), ready=True)
    assert not await check.is_revoked(principal("j1"))
    check.local.add(JTI, "j2", time.time() + 60)
    assert await check.is_revoked(principal("j2"))


async def test_redis_down_and_the_set_not_loaded_cannot_know() -> None:
    with pytest.raises(RevocationUnknown):
        await checker(FakeRedis(down=True)).is_revoked(principal())


async def test_fail_open_is_only_an_explicit_choice() -> None:
    assert not await checker(FakeRedis(down=True), fail_open=True).is_revoked(principal())
