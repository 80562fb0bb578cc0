"""The edge's revocation check, and what a token that cannot be verified is answered (the verified-token
cache is the verifier's: tests/unit/meshkit/auth/test_token_cache.py)."""

from __future__ import annotations

import time
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.edge_auth import CHALLENGE_INVALID, EdgeAuth, Refusal
from meshkit.auth.keys import KeysUnavailable
from meshkit.auth.revocation import RevocationChecker
from meshkit.auth.revocation_set import RevocationSet
from meshkit.auth.tokens import InvalidToken, Principal, TokenVerifier
from stubs.portico.gateway.v1 import options_pb2

PRIVATE = options_pb2.RoutePolicy(access=options_pb2.ACCESS_AUTHENTICATED)


def _principal(sub: str, expires_in: float) -> Principal:
    now = time.time()
    return Principal(sub, "t", "", frozenset({"user"}), f"jti-{sub}", now, now + expires_in, f"tok-{sub}")


class _Verifier:
    async def verify(self, token: str) -> Principal:
        return _principal(token, 60)


class _RedisDown:
    async def mget(self, *keys: str) -> list[str | None]:
        raise RedisConnectionError("connection refused")


def _edge(*, loaded: bool) -> EdgeAuth:
    local = RevocationSet()
    local.ready = loaded
    checker = RevocationChecker(
        cast(Redis, cast(Any, _RedisDown())),
        fail_open=False,
        errors=Counter("errors", "", registry=CollectorRegistry()),
        local=local,
    )
    return EdgeAuth(cast(TokenVerifier, cast(Any, _Verifier())), checker)


async def test_revocations_that_cannot_be_checked_answer_503_never_401_or_a_pass() -> None:
    policy = options_pb2.RoutePolicy()
    verdict = await _edge(loaded=False).check(policy, ["Bearer a"], [])
    assert isinstance(verdict, Refusal)
    assert verdict.status == 503


async def test_with_redis_down_the_loaded_set_decides() -> None:
    edge = _edge(loaded=True)
    edge.revocations.local.add("jti", "jti-b", time.time() + 60)
    policy = options_pb2.RoutePolicy()
    assert isinstance(await edge.check(policy, ["Bearer a"], []), Principal)
    refused = await edge.check(policy, ["Bearer b"], [])
    assert isinstance(refused, Refusal)
    assert refused.status == 401


class _FailingVerifier:
    def __init__(self, error: Exception) -> None:
        self._error = error

    async def verify(self, token: str) -> Principal:
        raise self._error


async def test_a_token_that_cannot_be_checked_now_is_503_with_retry_after_not_401() -> None:
    edge = EdgeAuth(cast(Any, _FailingVerifier(KeysUnavailable(retry_after=7))), cast(Any, None))
    refusal = await edge.check(PRIVATE, ["Bearer a.b.c"], [])
    assert isinstance(refusal, Refusal)
    assert (refusal.status, refusal.headers()) == (503, {"Retry-After": "7"})


async def test_an_invalid_token_stays_401_with_its_challenge() -> None:
    edge = EdgeAuth(cast(Any, _FailingVerifier(InvalidToken("unknown kid"))), cast(Any, None))
    refusal = await edge.check(PRIVATE, ["Bearer a.b.c"], [])
    assert isinstance(refusal, Refusal)
    assert (refusal.status, refusal.headers()) == (401, {"WWW-Authenticate": CHALLENGE_INVALID})
