"""One Redis round trip per gateway request, against a real Redis: the revocation marks are read by the
rate-limit script (gateway.edge_gate), and a revoked token is charged as a refusal (the IP), never as an
allowed request of its user."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from redis.asyncio import Redis

from harness.tokens import TokenIssuer
from meshkit.auth.revocation import revoke_jti
from tests.integration.gateway.test_streaming import Running, run_gateway

END = "portico-test-end-of-request"


@pytest.fixture
async def gw(issuer: TokenIssuer, redis_url: str) -> AsyncIterator[Running]:
    async for running in run_gateway(issuer, redis_url, rate_limit_per_user="3/hour"):
        yield running


async def commands_sent(redis_url: str, request: Any) -> list[str]:
    """The commands clients sent Redis (MONITOR; those a script runs are left out) while ``request``
    ran, up to an ECHO of our own that marks its end."""
    seen: list[str] = []
    marker = Redis.from_url(redis_url)
    await marker.ping()  # connected before MONITOR starts: only its ECHO is seen
    async with Redis.from_url(redis_url).monitor() as monitor:

        async def listen() -> None:
            while True:
                event = await monitor.next_command()
                if END in event["command"]:
                    return
                if event.get("client_type") != "lua":
                    seen.append(event["command"])

        listening = asyncio.create_task(listen())
        await asyncio.sleep(0.2)  # MONITOR is on before the request goes
        await request()
        await marker.echo(END)
        await asyncio.wait_for(listening, timeout=10)
    await marker.aclose()
    return seen


async def test_an_authenticated_request_costs_one_redis_round_trip(gw: Running, redis_url: str) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:

        async def get() -> None:
            answer = await client.get("/api/v1/posts/p-1", headers=gw.auth())
            assert answer.status_code == 200
            assert "x-ratelimit-remaining" in answer.headers

        await get()  # the first one also loads the script
        sent = await commands_sent(redis_url, get)
    assert len(sent) == 1, sent
    assert sent[0].upper().startswith("EVALSHA")


async def test_a_revoked_token_is_charged_to_the_ip_not_to_its_user(gw: Running, redis_url: str) -> None:
    claims = jwt.decode(gw.token, options={"verify_signature": False})
    redis = Redis.from_url(redis_url)
    try:
        await revoke_jti(redis, claims["tenant_id"], claims["jti"], claims["exp"])
        before_user = {key: await redis.get(key) for key in await redis.keys("portico:rl:user:*")}
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            # More than the user's 3/hour: a charge to the user would turn these into 429s.
            answers = [await client.get("/api/v1/posts/p-1", headers=gw.auth()) for _ in range(5)]
        after_user = {key: await redis.get(key) for key in await redis.keys("portico:rl:user:*")}
        ip_keys = await redis.keys("portico:rl:ip:*")
    finally:
        await redis.aclose()
    assert [a.status_code for a in answers] == [401] * 5
    assert {a.json()["error"]["message"] for a in answers} == {"Token has been revoked"}
    assert all("x-ratelimit-remaining" in a.headers for a in answers)
    assert after_user == before_user  # the user's limit neither charged nor created
    assert ip_keys
    assert gw.upstream.record.calls.get("GetPost:p-1", 0) == 0
