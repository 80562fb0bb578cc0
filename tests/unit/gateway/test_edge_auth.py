"""The edge's revocation check (the in-process set, then Redis's marks read with the limits by
gateway.edge_gate), and what a token that cannot be verified is answered (the verified-token cache is the
verifier's: tests/unit/meshkit/auth/test_token_cache.py)."""

from __future__ import annotations

import time
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.edge_auth import CHALLENGE_INVALID, EdgeAuth, Refusal
from gateway.edge_gate import Gated, gate
from gateway.ratelimit.limiter import RedisLimiter
from gateway.ratelimit.limits import Limit
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
    def register_script(self, script: str) -> Any:
        async def run(**_: Any) -> Any:
            raise RedisConnectionError("connection refused")

        return run

    async def mget(self, *keys: str) -> Any:
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


def _limiter() -> RedisLimiter:
    return RedisLimiter(cast(Redis, cast(Any, _RedisDown())), CollectorRegistry(), fail_open=True)


IP, USER = Limit("ip", 100, 60), Limit("user", 100, 60)


async def _gate(edge: EdgeAuth, limiter: RedisLimiter, token: str) -> Gated:
    principal = await edge.check(PRIVATE, [f"Bearer {token}"], [])
    assert isinstance(principal, Principal)
    return await gate(limiter, edge.revocations, [(IP, "ip:x"), (USER, "user:a")], [(IP, "ip:x")], principal)


async def test_revocations_that_cannot_be_checked_answer_503_never_401_or_a_pass() -> None:
    limiter = _limiter()
    gated = await _gate(_edge(loaded=False), limiter, "a")
    assert (gated.unknown, gated.revoked) == (True, False)
    # Refused: charged as a refusal (the IP alone), by the local limiter.
    assert [d.limit.name for d in gated.decisions or []] == ["ip"]


async def test_with_redis_down_the_loaded_set_decides() -> None:
    edge, limiter = _edge(loaded=True), _limiter()
    edge.revocations.local.add("jti", "jti-b", time.time() + 60)
    gated = await _gate(edge, limiter, "a")
    assert (gated.unknown, gated.revoked) == (False, False)
    assert [d.limit.name for d in gated.decisions or []] == ["ip", "user"]
    refused = await edge.check(PRIVATE, ["Bearer b"], [])  # the set answers before any Redis call
    assert isinstance(refused, Refusal)
    assert refused.status == 401


async def test_a_403_still_carries_the_principal_so_a_revocation_wins() -> None:
    edge = _edge(loaded=True)
    refused = await edge.check(PRIVATE, ["Bearer a"], ["other-tenant"])
    assert isinstance(refused, Refusal)
    assert refused.status == 403
    assert refused.principal is not None
    assert refused.principal.sub == "a"


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
