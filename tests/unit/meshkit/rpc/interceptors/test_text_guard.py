"""NUL characters in request strings are refused, wherever the string sits in the message."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from meshkit.rpc.interceptors.text_guard import TextGuardInterceptor, nul_violations
from meshkit.rpc.status import violations_of
from stubs.users.v1 import users_pb2

NUL_RULE = "must not contain NUL characters"


def test_plain_repeated_and_clean_fields() -> None:
    request = users_pb2.CreateUserRequest(username="a\x00b", email="a@example.com", roles=["user", "x\x00"])
    assert nul_violations(request) == [("username", NUL_RULE), ("roles[1]", NUL_RULE)]
    assert nul_violations(users_pb2.CreateUserRequest(username="ana", roles=["user"])) == []


def test_nested_messages_are_walked() -> None:
    message = users_pb2.ListUsersResponse(users=[users_pb2.User(), users_pb2.User(first_name="\x00")])
    assert nul_violations(message) == [("users[1].first_name", NUL_RULE)]


SERVICE = "portico.test.Guarded"


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    reached: list[str] = []

    async def echo(
        request: users_pb2.CreateUserRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> users_pb2.CreateUserRequest:
        reached.append(request.username)
        return request

    handler = grpc.unary_unary_rpc_method_handler(
        echo,
        request_deserializer=users_pb2.CreateUserRequest.FromString,
        response_serializer=users_pb2.CreateUserRequest.SerializeToString,
    )
    server = grpc.aio.server(interceptors=[TextGuardInterceptor()])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Echo": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as opened:
        opened.reached = reached  # type: ignore[attr-defined]
        yield opened
    await server.stop(None)


async def test_the_interceptor_refuses_before_the_handler(channel: grpc.aio.Channel) -> None:
    call = channel.unary_unary(
        f"/{SERVICE}/Echo",
        request_serializer=users_pb2.CreateUserRequest.SerializeToString,
        response_deserializer=users_pb2.CreateUserRequest.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(users_pb2.CreateUserRequest(username="t\x00"))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations_of(caught.value) == [("username", NUL_RULE)]
    assert (await call(users_pb2.CreateUserRequest(username="ok"))).username == "ok"
    assert channel.reached == ["ok"]  # type: ignore[attr-defined]
