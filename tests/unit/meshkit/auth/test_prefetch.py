"""Keys a method declares are read in the same MGET as the token's revocation marks: the revocation is
decided first (a revoked token never reaches the handler), the handler takes the values once, and with
Redis down nothing is prefetched while the revocation answer stays what it was (UNAVAILABLE without a
loaded set, never a pass)."""

from __future__ import annotations

from typing import Any, cast

import grpc
import pytest
from prometheus_client import CollectorRegistry

from meshkit.auth import prefetch
from meshkit.auth.interceptor import AuthInterceptor
from meshkit.auth.revocation import revoked_jti_key
from meshkit.auth.tokens import Principal, TokenVerifier
from tests.unit.meshkit.auth.test_interceptor import Verifier
from tests.unit.meshkit.auth.test_revocation import FakeRedis, checker

METHOD = "/test.Service/Get"


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code


class FakeContext:
    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", "Bearer jti-1"),)

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        raise Aborted(code)


def wrapped(redis: FakeRedis, declare: Any, seen: list[Any], *, ready: bool = False) -> Any:
    interceptor = AuthInterceptor(
        cast(TokenVerifier, cast(Any, Verifier())),
        checker(redis, ready=ready),
        frozenset(),
        CollectorRegistry(),
        prefetches={METHOD: declare},
    )

    async def handler(request: Any, context: Any) -> str:
        seen.append(prefetch.take("entry", "gen"))
        seen.append(prefetch.take("entry", "gen"))  # each value is handed out once
        return "answer"

    return interceptor.wrap_unary(handler, METHOD)


def declare(request: Any, principal: Principal) -> tuple[str, ...]:
    return ("entry", "gen")


async def test_the_declared_keys_come_with_the_marks_in_one_round_trip() -> None:
    redis, seen = FakeRedis({"entry": "cached", "gen": "3"}), []
    assert await wrapped(redis, declare, seen)(None, FakeContext()) == "answer"
    assert redis.calls == 1
    assert seen == [["cached", "3"], None]


async def test_a_revoked_token_never_reaches_the_handler() -> None:
    redis, seen = FakeRedis({revoked_jti_key("t", "jti-1"): "1", "entry": "cached"}), []
    with pytest.raises(Aborted) as refused:
        await wrapped(redis, declare, seen)(None, FakeContext())
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert seen == []


async def test_redis_down_is_unavailable_without_a_loaded_set_and_prefetches_nothing() -> None:
    seen: list[Any] = []
    with pytest.raises(Aborted) as refused:
        await wrapped(FakeRedis(down=True), declare, seen)(None, FakeContext())
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert seen == []
    # A loaded set decides alone; the handler finds nothing read ahead and reads for itself.
    assert await wrapped(FakeRedis(down=True), declare, seen, ready=True)(None, FakeContext()) == "answer"
    assert seen == [None, None]


async def test_a_failing_declaration_only_costs_the_round_trip() -> None:
    def broken(request: Any, principal: Principal) -> tuple[str, ...]:
        raise KeyError("bug")

    redis, seen = FakeRedis({"entry": "cached"}), []
    assert await wrapped(redis, broken, seen)(None, FakeContext()) == "answer"
    assert seen == [None, None]
