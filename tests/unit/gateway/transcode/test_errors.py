"""Mapping backend statuses (and their BadRequest trailers) to the contract's errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from gateway.transcode.errors import (
    DETAILS_TRAILER,
    ErrorReply,
    from_rpc_error,
    from_status,
)
from meshkit.rpc.status import (
    INVALID_REQUEST,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    abort,
    bad_request_status,
    payload_status,
)

C = grpc.StatusCode
BACKEND_TEXT = "connect to 10.0.0.7:5432 failed: password authentication failed for user portico"


def rpc_error(
    code: grpc.StatusCode, details: str, trailers: grpc.aio.Metadata | None = None
) -> grpc.RpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailers or grpc.aio.Metadata(), details, None)


@pytest.mark.parametrize(
    ("code", "status", "contract_code", "message"),
    [
        (C.INVALID_ARGUMENT, 400, "BAD_REQUEST", BACKEND_TEXT),
        (C.OUT_OF_RANGE, 400, "BAD_REQUEST", BACKEND_TEXT),
        (C.FAILED_PRECONDITION, 400, "BAD_REQUEST", BACKEND_TEXT),
        (C.UNAUTHENTICATED, 401, "UNAUTHORIZED", BACKEND_TEXT),
        (C.PERMISSION_DENIED, 403, "FORBIDDEN", BACKEND_TEXT),
        (C.NOT_FOUND, 404, "NOT_FOUND", BACKEND_TEXT),
        (C.ALREADY_EXISTS, 409, "CONFLICT", BACKEND_TEXT),
        (C.ABORTED, 409, "CONFLICT", BACKEND_TEXT),
        # Without a rich status RESOURCE_EXHAUSTED may be the gRPC library's own text: never shown.
        (C.RESOURCE_EXHAUSTED, 429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded"),
        (C.UNAVAILABLE, 503, "UNAVAILABLE", "Service unavailable"),
        (C.DEADLINE_EXCEEDED, 504, "TIMEOUT", "Upstream timed out"),
        (C.INTERNAL, 500, "INTERNAL_ERROR", "Internal server error"),
        (C.UNKNOWN, 500, "INTERNAL_ERROR", "Internal server error"),
        (C.UNIMPLEMENTED, 500, "INTERNAL_ERROR", "Internal server error"),
        (C.DATA_LOSS, 500, "INTERNAL_ERROR", "Internal server error"),
        (C.CANCELLED, 500, "INTERNAL_ERROR", "Internal server error"),
        (C.OK, 500, "INTERNAL_ERROR", "Internal server error"),  # an "error" with OK is our bug
    ],
)
def test_status_table(code: grpc.StatusCode, status: int, contract_code: str, message: str) -> None:
    # 4xx messages are the backend's, written for clients; 5xx ones are generic and never carry it.
    reply = from_rpc_error(rpc_error(code, BACKEND_TEXT))
    assert reply == ErrorReply(status, contract_code, message, None)
    if message != BACKEND_TEXT:
        assert "10.0.0.7" not in str(reply)


@pytest.mark.parametrize(
    ("code", "message"),
    [(C.NOT_FOUND, "Not found"), (C.INVALID_ARGUMENT, "Invalid request"), (C.PERMISSION_DENIED, "Forbidden")],
)
def test_4xx_without_a_message_gets_a_default(code: grpc.StatusCode, message: str) -> None:
    assert from_status(code, "").message == message
    assert from_status(code, None).message == message


def test_bad_request_details_from_trailers() -> None:
    status = bad_request_status([("email", "must be a valid email"), ("page_size", "must be 1 to 100")])
    error = rpc_error(status.code, status.details, grpc.aio.Metadata(*status.trailing_metadata))
    assert from_rpc_error(error) == ErrorReply(
        400,
        "BAD_REQUEST",
        "Invalid request",
        [
            {"field": "email", "description": "must be a valid email"},
            {"field": "page_size", "description": "must be 1 to 100"},
        ],
    )


def test_sync_style_trailers_of_tuples() -> None:
    status = bad_request_status([("q", "must be 2 to 100 characters")])
    reply = from_status(status.code, status.details, status.trailing_metadata)
    assert reply.details == [{"field": "q", "description": "must be 2 to 100 characters"}]


def test_5xx_drops_details_too() -> None:
    status = bad_request_status([("dsn", BACKEND_TEXT)])
    assert from_status(C.INTERNAL, BACKEND_TEXT, status.trailing_metadata).details is None


@pytest.mark.parametrize(
    "trailers",
    [
        [(DETAILS_TRAILER, b"\xff\xff not a status")],
        [(DETAILS_TRAILER, "text, not bytes")],
        [("x-other", b"1")],
        [],
    ],
)
def test_undecodable_or_absent_trailers_are_ignored(trailers: list[tuple[str, str | bytes]]) -> None:
    reply = from_status(C.INVALID_ARGUMENT, "Invalid request", trailers)
    assert (reply.status, reply.details) == (400, None)


@pytest.mark.parametrize(
    ("reason", "status", "code"),
    [(PAYLOAD_TOO_LARGE, 413, "PAYLOAD_TOO_LARGE"), (UNSUPPORTED_MEDIA_TYPE, 415, "UNSUPPORTED_MEDIA_TYPE")],
)
def test_upload_refusals_become_413_and_415(reason: str, status: int, code: str) -> None:
    sent = payload_status(reason, ("image", "must be PNG, JPEG, GIF or WebP up to 5 MiB"), "Image refused")
    reply = from_status(sent.code, sent.details, sent.trailing_metadata)
    assert reply == ErrorReply(
        status,
        code,
        "Image refused",
        [{"field": "image", "description": "must be PNG, JPEG, GIF or WebP up to 5 MiB"}],
    )


def test_a_backend_quota_with_a_rich_status_keeps_its_message() -> None:
    sent = bad_request_status([("topic", "too many subscriptions")], "Subscription limit reached")
    reply = from_status(C.RESOURCE_EXHAUSTED, "Subscription limit reached", sent.trailing_metadata)
    assert (reply.status, reply.message) == (429, "Subscription limit reached")


SERVICE = "portico.test.Transcode"


async def invalid(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await abort(context, C.INVALID_ARGUMENT, INVALID_REQUEST, violations=[("user_id", "must be a UUID")])


async def crash(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await context.abort(C.INTERNAL, BACKEND_TEXT)
    return b""


async def big(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return b"x" * 4096


async def too_large(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await abort(
        context,
        C.RESOURCE_EXHAUSTED,
        "Image too large",
        reason=PAYLOAD_TOO_LARGE,
        violations=[("image", "must be at most 5 MiB")],
    )


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server()
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in (("Invalid", invalid), ("Crash", crash))
    }
    handlers["Big"] = grpc.unary_unary_rpc_method_handler(big)
    handlers["TooLarge"] = grpc.unary_unary_rpc_method_handler(too_large)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as opened:
        opened.portico_target = f"127.0.0.1:{port}"  # type: ignore[attr-defined]
        yield opened
    await server.stop(None)


async def test_real_call_bad_request(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary(f"/{SERVICE}/Invalid", None, None)(b"")
    reply = from_rpc_error(caught.value)
    assert reply == ErrorReply(
        400, "BAD_REQUEST", "Invalid request", [{"field": "user_id", "description": "must be a UUID"}]
    )


async def test_real_call_internal_hides_the_backend_message(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary(f"/{SERVICE}/Crash", None, None)(b"")
    assert from_rpc_error(caught.value) == ErrorReply(500, "INTERNAL_ERROR", "Internal server error")


async def test_real_call_payload_too_large_is_a_413(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary(f"/{SERVICE}/TooLarge", None, None)(b"")
    reply = from_rpc_error(caught.value)
    assert (reply.status, reply.code, reply.message) == (413, "PAYLOAD_TOO_LARGE", "Image too large")


async def test_the_librarys_own_resource_exhausted_text_never_reaches_the_client(
    channel: grpc.aio.Channel,
) -> None:
    target = channel.portico_target  # type: ignore[attr-defined]
    async with grpc.aio.insecure_channel(
        target, options=[("grpc.max_receive_message_length", 1024)]
    ) as small:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await small.unary_unary(f"/{SERVICE}/Big", None, None)(b"")
    assert caught.value.code() is C.RESOURCE_EXHAUSTED
    assert "1024" in (caught.value.details() or "")  # the library names its internal limit...
    reply = from_rpc_error(caught.value)
    assert reply == ErrorReply(
        429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded"
    )  # ...the client never sees it
