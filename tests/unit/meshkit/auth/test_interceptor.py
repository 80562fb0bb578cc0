"""The backends' authenticator and revocations: with Redis unreachable a loaded in-process set decides, and
a process that cannot know answers UNAVAILABLE — never UNAUTHENTICATED, never the handler."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, cast

import grpc
import pytest
from prometheus_client import Counter

from meshkit.auth.interceptor import AMBIGUOUS, AuthInterceptor, bearer_token, current_principal, token_fields
from meshkit.auth.revocation import RevocationChecker
from meshkit.auth.revocation_set import JTI, RevocationSet
from meshkit.auth.tokens import Principal, TokenVerifier
from meshkit.rpc.context import Context
from meshkit.rpc.runtime import Service
from meshkit.rpc.server import BackendServer
from stubs.auth.v1 import auth_pb2
from tests.unit.meshkit.rpc.test_runtime import make_runtime
from tests.unit.meshkit.rpc.test_server import SERVICE, PingSettings, ping_service


class Verifier:
    """Every token is valid; its text is its jti."""

    async def verify(self, token: str) -> Principal:
        now = time.time()
        return Principal("u", "t", "", frozenset({"user"}), token, now, now + 600, token)


@pytest.fixture
async def served() -> AsyncIterator[tuple[grpc.aio.Channel, RevocationSet]]:
    runtime = make_runtime(PingSettings())  # its Redis is unreachable
    local = RevocationSet()
    errors = Counter("revocation_errors", "", registry=runtime.registry)
    checker = RevocationChecker(runtime.redis, fail_open=False, errors=errors, local=local)
    authenticator = AuthInterceptor(
        cast(TokenVerifier, cast(Any, Verifier())), checker, frozenset(), runtime.registry
    )
    server = BackendServer(runtime, [ping_service()], authenticator)
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel, local
    finally:
        await server.stop()


async def call(channel: grpc.aio.Channel, token: str) -> grpc.StatusCode:
    try:
        await channel.unary_unary(f"/{SERVICE}/Ping")(b"", metadata=(("authorization", f"Bearer {token}"),))
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_without_redis_or_a_loaded_set_the_call_is_unavailable(
    served: tuple[grpc.aio.Channel, RevocationSet],
) -> None:
    channel, _ = served
    assert await call(channel, "a") == grpc.StatusCode.UNAVAILABLE


async def test_without_redis_the_loaded_set_decides(served: tuple[grpc.aio.Channel, RevocationSet]) -> None:
    channel, local = served
    local.ready = True
    local.add(JTI, "revoked", time.time() + 60)
    assert await call(channel, "fine") == grpc.StatusCode.OK
    assert await call(channel, "revoked") == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ((("authorization", "Bearer abc"),), "abc"),
        ((("authorization", "bearer  abc "),), "abc"),
        ((("authorization", "Basic abc"),), None),
        ((("authorization", "Bearer "),), None),
        ((("x-request-id", "r1"),), None),
        ((), None),
        # Two entries are refused, whichever is valid: a proxy in front may have checked the other one.
        ((("authorization", "Bearer abc"), ("authorization", "Bearer def")), AMBIGUOUS),
        ((("authorization", "Bearer abc"), ("authorization", "Basic x")), AMBIGUOUS),
    ],
)
def test_the_bearer_token_of_a_call(metadata: tuple[tuple[str, str], ...], expected: object) -> None:
    assert bearer_token(metadata) == expected


def test_the_routes_that_take_the_token_in_the_message_come_from_their_policy() -> None:
    assert token_fields(["auth.v1.AuthService"]) == {"/auth.v1.AuthService/Logout": "token"}


@pytest.fixture
async def carried() -> AsyncIterator[grpc.aio.Channel]:
    """A method whose request (auth's LogoutRequest) may carry the token in `token`; it answers the jti
    it was called with."""
    runtime = make_runtime(PingSettings())
    local = RevocationSet()
    local.ready = True  # nothing revoked, so no Redis is needed
    errors = Counter("revocation_errors", "", registry=runtime.registry)
    checker = RevocationChecker(runtime.redis, fail_open=False, errors=errors, local=local)
    authenticator = AuthInterceptor(
        cast(TokenVerifier, cast(Any, Verifier())),
        checker,
        frozenset(),
        runtime.registry,
        token_fields={f"/{SERVICE}/Logout": "token"},
    )

    async def logout(request: auth_pb2.LogoutRequest, context: Context) -> bytes:
        return current_principal().jti.encode()

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Logout": grpc.unary_unary_rpc_method_handler(
                logout, request_deserializer=auth_pb2.LogoutRequest.FromString
            )
        },
    )
    service = Service(SERVICE, lambda server: server.add_generic_rpc_handlers((handler,)))
    server = BackendServer(runtime, [service], authenticator)
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop()


@pytest.mark.parametrize(
    ("metadata_token", "field_token", "expected"),
    [
        (None, "abc", "abc"),  # the message alone
        ("abc", "", "abc"),  # the metadata alone
        ("abc", "abc", "abc"),  # both, the same
        ("abc", "def", grpc.StatusCode.UNAUTHENTICATED),  # both, different: never pick one
        (None, "  ", grpc.StatusCode.UNAUTHENTICATED),  # neither
    ],
)
async def test_a_token_in_the_message_counts_only_when_the_metadata_has_none_or_the_same(
    carried: grpc.aio.Channel, metadata_token: str | None, field_token: str, expected: object
) -> None:
    metadata = (("authorization", f"Bearer {metadata_token}"),) if metadata_token else ()
    request = auth_pb2.LogoutRequest(token=field_token).SerializeToString()
    try:
        reply = await carried.unary_unary(f"/{SERVICE}/Logout")(request, metadata=metadata)
        answer: object = reply.decode()
    except grpc.aio.AioRpcError as exc:
        answer = exc.code()
    assert answer == expected
