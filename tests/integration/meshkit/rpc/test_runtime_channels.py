"""A backend's channel to a peer that starts late: calls wait for it within their deadline, and the channel
reconnects promptly, so the first call after the peer serves succeeds instead of failing with UNAVAILABLE
while the channel sits out a long reconnect back-off (what made registrations fail on a busy machine)."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from infra.procs import free_port
from meshkit.rpc.channels import PEER_OPTIONS, open_channel

METHOD = "/portico.test.Echo/Echo"


async def _echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def _start_peer(port: int) -> grpc.aio.Server:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "portico.test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


async def test_a_peer_that_starts_late_is_reached_by_the_next_call() -> None:
    port = free_port()
    async with open_channel(f"127.0.0.1:{port}", options=PEER_OPTIONS) as channel:
        echo = channel.unary_unary(METHOD)
        # The peer is still starting: a few calls fail (as a bootstrap retrying with back-off would),
        # and the channel's reconnect back-off grows meanwhile.
        for pause in (0.0, 1.0, 1.5, 2.5):
            await asyncio.sleep(pause)
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await echo(b"early", timeout=0.3)
            assert failed.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        peer = await _start_peer(port)
        try:
            started = time.monotonic()
            assert await echo(b"now", timeout=5) == b"now"
            waited = time.monotonic() - started
            print(f"first call after the peer started answered in {waited:.2f}s")
            assert waited < 3
        finally:
            await peer.stop(None)
