"""Unexpected exceptions reach callers as a plain INTERNAL, a dependency that blinked as UNAVAILABLE
("try again"); statuses chosen by handlers stand."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import redis.exceptions
from sqlalchemy.exc import OperationalError

from meshkit.rpc.interceptors.internal_errors import UNAVAILABLE_MESSAGE, ErrorInterceptor

SERVICE = "portico.test.Errors"


async def crash(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    raise RuntimeError("database password is hunter2")


async def locked(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    # As SQLite's busy timeout ends a BEGIN IMMEDIATE, the statement's parameters in the message.
    cause = Exception("database is locked")
    raise OperationalError("UPDATE credentials SET hash=?", ("hunter2-hash",), cause) from cause


async def redis_gone(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    try:
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379")
    except redis.exceptions.ConnectionError as exc:
        raise RuntimeError("could not count the failures") from exc  # wrapped: the cause still counts


async def missing(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await context.abort(grpc.StatusCode.NOT_FOUND, "User not found")
    return b""


async def unimplemented(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    context.set_code(grpc.StatusCode.UNIMPLEMENTED)  # what the generated base classes do
    context.set_details("Method not implemented!")
    raise NotImplementedError("Method not implemented!")


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(fn)  # type: ignore[arg-type]
        for name, fn in (
            ("Crash", crash),
            ("Locked", locked),
            ("RedisGone", redis_gone),
            ("Missing", missing),
            ("Unimplemented", unimplemented),
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as opened:
        yield opened
    await server.stop(None)


@pytest.mark.parametrize(
    ("method", "code", "details"),
    [
        ("Crash", grpc.StatusCode.INTERNAL, "Internal error"),
        ("Locked", grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_MESSAGE),
        ("RedisGone", grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_MESSAGE),
        ("Missing", grpc.StatusCode.NOT_FOUND, "User not found"),
        ("Unimplemented", grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!"),
    ],
)
async def test_statuses(channel: grpc.aio.Channel, method: str, code: grpc.StatusCode, details: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await channel.unary_unary(f"/{SERVICE}/{method}")(b"x")
    assert err.value.code() == code
    assert err.value.details() == details
    assert "hunter2" not in (err.value.debug_error_string() or "")


async def test_a_dependency_failure_is_logged_as_a_warning_without_its_text(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await channel.unary_unary(f"/{SERVICE}/Locked")(b"x")
    [record] = [r for r in caplog.records if r.name.endswith("internal_errors")]
    assert record.levelname == "WARNING"
    assert (record.dependency, record.error) == ("database", "OperationalError")  # type: ignore[attr-defined]
    assert record.exc_info is None
    assert "hunter2" not in caplog.text
