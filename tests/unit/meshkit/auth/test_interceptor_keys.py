"""What a backend answers a token it cannot verify: UNAUTHENTICATED when it is invalid, UNAVAILABLE when
its key cannot be known right now (auth unreachable), so no caller signs its user out over an outage."""

from __future__ import annotations

from typing import Any, cast

import grpc
import pytest

from meshkit.auth.interceptor import AuthInterceptor
from meshkit.auth.keys import KeysUnavailable
from meshkit.auth.tokens import InvalidToken, Principal
from meshkit.rpc.server import BackendServer
from tests.unit.meshkit.rpc.test_runtime import make_runtime
from tests.unit.meshkit.rpc.test_server import SERVICE, PingSettings, ping_service


class _Verifier:
    def __init__(self, error: Exception) -> None:
        self._error = error

    async def verify(self, token: str) -> Principal:
        raise self._error


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (KeysUnavailable(retry_after=5), grpc.StatusCode.UNAVAILABLE),
        (InvalidToken("unknown kid"), grpc.StatusCode.UNAUTHENTICATED),
    ],
)
async def test_the_verifier_error_picks_the_status(error: Exception, code: grpc.StatusCode) -> None:
    runtime = make_runtime(PingSettings())
    authenticator = AuthInterceptor(
        cast(Any, _Verifier(error)), runtime.revocations, frozenset(), runtime.registry
    )
    server = BackendServer(runtime, [ping_service()], authenticator)
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await channel.unary_unary(f"/{SERVICE}/Ping")(
                    b"1", metadata=(("authorization", "Bearer a.b.c"),), timeout=10
                )
    finally:
        await server.stop()
    assert refused.value.code() == code
