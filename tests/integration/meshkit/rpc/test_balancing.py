"""The kit's balanced channels follow each replica's health: calls spread over every address of a target
(``ipv4:a,b``), a replica that turns NOT_SERVING stops getting calls on the connection it keeps open, and
gets them again once SERVING; with no replica SERVING a call fails UNAVAILABLE, never reaches one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshkit.rpc.channels import PEER_OPTIONS, ROUND_ROBIN, ChannelOption, open_channel
from meshkit.rpc.health import READINESS, AsyncHealthServicer

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
METHOD = "/portico.test.Who/Who"
SETTLE_S = 5.0  # the health watch streams the change at once; the bound only stops a broken run


@dataclass
class Replica:
    name: str
    server: grpc.aio.Server
    health: AsyncHealthServicer
    port: int
    calls: int = 0


async def _replica(name: str) -> Replica:
    server = grpc.aio.server()
    health = AsyncHealthServicer()
    await health.set(READINESS, SERVING)
    replica = Replica(name, server, health, 0)

    async def who(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        replica.calls += 1
        return name.encode()

    handler = grpc.method_handlers_generic_handler(
        "portico.test.Who", {"Who": grpc.unary_unary_rpc_method_handler(who)}
    )
    server.add_generic_rpc_handlers((handler,))
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    replica.port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return replica


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[Replica, Replica]]:
    a, b = await _replica("a"), await _replica("b")
    yield a, b
    await asyncio.gather(a.server.stop(None), b.server.stop(None))


async def _answers(channel: grpc.aio.Channel, count: int) -> list[str]:
    who = channel.unary_unary(METHOD)
    return [(await who(b"", timeout=2)).decode() for _ in range(count)]


async def _until(channel: grpc.aio.Channel, wanted: set[str]) -> None:
    """Call until a round of answers comes from exactly ``wanted``."""
    async with asyncio.timeout(SETTLE_S):
        while set(await _answers(channel, 6)) != wanted:
            continue  # each round is six calls: no pause needed


@pytest.mark.parametrize("options", [(ROUND_ROBIN,), PEER_OPTIONS], ids=["gateway", "peer"])
async def test_a_replica_not_serving_gets_no_calls_until_it_serves_again(
    replicas: tuple[Replica, Replica], options: tuple[ChannelOption, ...]
) -> None:
    a, b = replicas
    target = f"ipv4:127.0.0.1:{a.port},127.0.0.1:{b.port}"
    async with open_channel(target, options=options) as channel:
        await _until(channel, {"a", "b"})  # round robin over both addresses

        await a.health.set(READINESS, NOT_SERVING)  # a stays up, its connection open
        await _until(channel, {"b"})
        before = a.calls
        assert set(await _answers(channel, 30)) == {"b"}
        assert a.calls == before

        await a.health.set(READINESS, SERVING)
        await _until(channel, {"a", "b"})


async def test_with_no_replica_serving_a_call_fails_unavailable(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    async with open_channel(f"ipv4:127.0.0.1:{a.port},127.0.0.1:{b.port}", options=(ROUND_ROBIN,)) as channel:
        await _until(channel, {"a", "b"})
        for replica in replicas:
            await replica.health.set(READINESS, NOT_SERVING)
        who = channel.unary_unary(METHOD)

        async def fails() -> None:
            while True:
                try:
                    await who(b"", timeout=2)
                except grpc.aio.AioRpcError:
                    return

        await asyncio.wait_for(fails(), SETTLE_S)  # once the change has reached the channel
        before = a.calls + b.calls
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await who(b"", timeout=2)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value
        assert a.calls + b.calls == before


async def test_a_stopped_replica_leaves_the_rotation_without_a_failed_call(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    async with open_channel(f"ipv4:127.0.0.1:{a.port},127.0.0.1:{b.port}", options=(ROUND_ROBIN,)) as channel:
        await _until(channel, {"a", "b"})
        await a.server.stop(grace=1)  # a drains: its GOAWAY takes it out of the rotation
        assert set(await _answers(channel, 30)) == {"b"}
