"""A backend's server ends each connection after ``PORTICO_GRPC_MAX_CONNECTION_AGE`` (so clients
re-resolve and reach new replicas), without cutting the calls still running on it."""

from __future__ import annotations

import asyncio

import grpc

from meshkit.config.serve import ServeSettings
from meshkit.rpc.channels import PEER_OPTIONS, open_channel
from meshkit.rpc.server import connection_age_options

AGE_S = 0.5
LONG_CALL_S = 3 * AGE_S  # outlives its connection's age
METHOD = "/portico.test.Slow/Slow"


async def _slow(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await asyncio.sleep(float(request.decode()))
    return request


async def test_an_aged_connection_is_replaced_and_its_calls_finish() -> None:
    settings = ServeSettings(port=0, metrics_port=0, max_connection_age=AGE_S)
    server = grpc.aio.server(options=connection_age_options(settings))
    handler = grpc.method_handlers_generic_handler(
        "portico.test.Slow", {"Slow": grpc.unary_unary_rpc_method_handler(_slow)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with open_channel(f"127.0.0.1:{port}", options=PEER_OPTIONS) as channel:
            slow = channel.unary_unary(METHOD)
            long_call = asyncio.ensure_future(slow(str(LONG_CALL_S).encode(), timeout=30))
            # The server's GOAWAY at the age takes the channel off READY (it reconnects on the next call).
            async with asyncio.timeout(30):
                while channel.get_state() != grpc.ChannelConnectivity.READY:
                    await channel.wait_for_state_change(channel.get_state())
                await channel.wait_for_state_change(grpc.ChannelConnectivity.READY)
            # The call that was running on the aged connection still ends normally (no grace is set).
            assert await long_call == str(LONG_CALL_S).encode()
            assert await slow(b"0", timeout=10) == b"0"  # and the next call takes a new connection
    finally:
        await server.stop(None)


def test_a_grace_bounds_the_calls_on_an_aged_connection() -> None:
    settings = ServeSettings(port=0, metrics_port=0, max_connection_age=30, max_connection_age_grace=5)
    assert dict(connection_age_options(settings)) == {
        "grpc.max_connection_age_ms": 30_000,
        "grpc.max_connection_age_grace_ms": 5_000,
    }
