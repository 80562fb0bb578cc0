"""The one way a servicer ends a call: ``abort`` with a code, a message and optional rich details."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from meshkit.rpc.context import Context
from meshkit.rpc.status import (
    ERROR_DOMAIN,
    INVALID_REQUEST,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    abort,
    detailed_status,
    payload_code,
    violations_of,
)

C = grpc.StatusCode
SERVICE = "portico.test.Abort"
Handler = Callable[[bytes, Context], Awaitable[bytes]]


async def plain(request: bytes, context: Context) -> bytes:
    await abort(context, C.NOT_FOUND, "User not found")


async def invalid(request: bytes, context: Context) -> bytes:
    await abort(context, C.INVALID_ARGUMENT, INVALID_REQUEST, violations=[("email", "must be valid")])


async def too_large(request: bytes, context: Context) -> bytes:
    await abort(
        context, C.RESOURCE_EXHAUSTED, "Too large", reason=PAYLOAD_TOO_LARGE, violations=[("image", "5 MiB")]
    )


async def passed_on(request: bytes, context: Context) -> bytes:
    await abort(context, C.ALREADY_EXISTS, "taken", trailers=(("x-origin", "users"),))


HANDLERS: dict[str, Handler] = {
    "Plain": plain,
    "Invalid": invalid,
    "TooLarge": too_large,
    "PassedOn": passed_on,
}


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server()
    methods = {name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in HANDLERS.items()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, methods),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as opened:
        yield opened
    await server.stop(None)


async def failure(channel: grpc.aio.Channel, method: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary(f"/{SERVICE}/{method}")(b"")
    return caught.value


async def test_a_plain_abort_carries_code_and_message_only(channel: grpc.aio.Channel) -> None:
    error = await failure(channel, "Plain")
    assert (error.code(), error.details()) == (C.NOT_FOUND, "User not found")
    assert rpc_status.from_call(cast(Any, error)) is None  # no grpc-status-details-bin trailer


async def test_violations_travel_as_a_bad_request(channel: grpc.aio.Channel) -> None:
    error = await failure(channel, "Invalid")
    assert (error.code(), error.details()) == (C.INVALID_ARGUMENT, INVALID_REQUEST)
    assert violations_of(error) == [("email", "must be valid")]


async def test_a_reason_travels_as_error_info(channel: grpc.aio.Channel) -> None:
    error = await failure(channel, "TooLarge")
    assert error.code() is C.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(cast(Any, error))
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)  # ErrorInfo first, then the BadRequest
    assert (info.reason, info.domain) == (PAYLOAD_TOO_LARGE, ERROR_DOMAIN)
    assert violations_of(error) == [("image", "5 MiB")]


async def test_trailers_are_passed_on_as_they_are(channel: grpc.aio.Channel) -> None:
    error = await failure(channel, "PassedOn")
    assert (error.code(), error.details()) == (C.ALREADY_EXISTS, "taken")
    assert ("x-origin", "users") in tuple(cast(Any, error.trailing_metadata()))


def test_detailed_status_keeps_code_and_message_and_packs_a_reason() -> None:
    status = detailed_status(C.NOT_FOUND, "gone")
    assert (status.code, status.details) == (C.NOT_FOUND, "gone")
    with_reason = detailed_status(C.INVALID_ARGUMENT, "bad type", reason=UNSUPPORTED_MEDIA_TYPE)
    assert [key for key, _ in with_reason.trailing_metadata] == ["grpc-status-details-bin"]


def test_payload_reasons_pick_their_status() -> None:
    assert payload_code(PAYLOAD_TOO_LARGE) is C.RESOURCE_EXHAUSTED
    assert payload_code(UNSUPPORTED_MEDIA_TYPE) is C.INVALID_ARGUMENT


async def test_abort_never_returns_even_when_the_context_does() -> None:
    class Lenient:
        async def abort(self, *args: object) -> None:
            return None  # a context that forgot to raise

    with pytest.raises(AssertionError, match="unreachable"):
        await abort(cast(Context, Lenient()), C.INTERNAL, "boom")
