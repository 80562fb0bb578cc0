"""Requests are checked against their proto rules before any handler runs: the contract's BadRequest,
one violation per field, and a rule that cannot run is a plain INTERNAL."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import protovalidate
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from meshkit.rpc.interceptors import validation
from meshkit.rpc.interceptors.validation import (
    ValidationInterceptor,
    check_request,
    has_rules,
    request_violations,
)
from meshkit.rpc.status import violations_of
from stubs.broker.v1 import broker_pb2
from stubs.buf.validate import validate_pb2
from stubs.posts.v1 import posts_pb2
from stubs.users.v1 import users_pb2

SERVICE = "portico.test.Validated"


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    reached: list[str] = []

    async def create(request: users_pb2.CreateUserRequest, context: Any) -> users_pb2.CreateUserResponse:
        reached.append(request.email)
        return users_pb2.CreateUserResponse()

    async def me(request: users_pb2.GetMeRequest, context: Any) -> users_pb2.GetMeResponse:
        reached.append("me")
        return users_pb2.GetMeResponse()

    async def subscribe(request: broker_pb2.SubscribeToTopicRequest, context: Any) -> AsyncIterator[Any]:
        reached.append(request.topic)
        yield broker_pb2.SubscribeToTopicResponse(topic=request.topic)

    def unary(behavior: Any, request: Any, response: Any) -> Any:
        return grpc.unary_unary_rpc_method_handler(
            behavior, request_deserializer=request.FromString, response_serializer=response.SerializeToString
        )

    handlers = {
        "Create": unary(create, users_pb2.CreateUserRequest, users_pb2.CreateUserResponse),
        "Me": unary(me, users_pb2.GetMeRequest, users_pb2.GetMeResponse),
        "Subscribe": grpc.unary_stream_rpc_method_handler(
            subscribe,
            request_deserializer=broker_pb2.SubscribeToTopicRequest.FromString,
            response_serializer=broker_pb2.SubscribeToTopicResponse.SerializeToString,
        ),
    }
    server = grpc.aio.server(interceptors=[ValidationInterceptor()])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as opened:
        opened.reached = reached  # type: ignore[attr-defined]
        yield opened
    await server.stop(None)


def _create(channel: grpc.aio.Channel) -> Any:
    return channel.unary_unary(
        f"/{SERVICE}/Create",
        request_serializer=users_pb2.CreateUserRequest.SerializeToString,
        response_deserializer=users_pb2.CreateUserResponse.FromString,
    )


async def test_a_refused_request_never_reaches_the_handler(channel: grpc.aio.Channel) -> None:
    call = _create(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(users_pb2.CreateUserRequest(email="nope", username="x!", roles=["root", "x"]))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "Invalid request"
    # One violation per field (the username breaks two rules, roles two items), named as the contract does.
    assert violations_of(caught.value) == [
        ("username", "must be 3-32 characters of letters, digits, '_', '.' or '-'"),
        ("email", "must be a valid email address"),
        ("roles", "must be one of: user, admin"),
    ]
    await call(users_pb2.CreateUserRequest(email="ana@example.com"))
    assert channel.reached == ["ana@example.com"]  # type: ignore[attr-defined]


async def test_server_streams_are_checked_before_their_first_item(channel: grpc.aio.Channel) -> None:
    call = channel.unary_stream(
        f"/{SERVICE}/Subscribe",
        request_serializer=broker_pb2.SubscribeToTopicRequest.SerializeToString,
        response_deserializer=broker_pb2.SubscribeToTopicResponse.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call(broker_pb2.SubscribeToTopicRequest(topic="a b")):
            pass
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations_of(caught.value)] == ["topic"]
    items = [item.topic async for item in call(broker_pb2.SubscribeToTopicRequest(topic="orders"))]
    assert items == ["orders"]
    assert channel.reached == ["orders"]  # type: ignore[attr-defined]


class Broken:
    """A validator whose rules cannot run."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def collect_violations(self, message: Any) -> list[Any]:
        self.calls += 1
        raise self.error


@pytest.mark.parametrize(
    "error", [protovalidate.CompilationError("bad rule"), protovalidate.EvaluationError("cel blew up")]
)
async def test_a_rule_that_cannot_run_is_internal_and_logged(
    channel: grpc.aio.Channel,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    monkeypatch.setattr(validation, "_VALIDATOR", Broken(error))
    with caplog.at_level(logging.ERROR), pytest.raises(grpc.aio.AioRpcError) as caught:
        await _create(channel)(users_pb2.CreateUserRequest(email="ana@example.com"))
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert caught.value.details() == "Internal error"  # nothing of the rule or the error
    assert violations_of(caught.value) == []
    assert "request validation failed" in caplog.text
    assert channel.reached == []  # type: ignore[attr-defined]


async def test_messages_without_rules_skip_the_validator(
    channel: grpc.aio.Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Broken(protovalidate.CompilationError("must not be called"))
    monkeypatch.setattr(validation, "_VALIDATOR", broken)
    me = channel.unary_unary(
        f"/{SERVICE}/Me",
        request_serializer=users_pb2.GetMeRequest.SerializeToString,
        response_deserializer=users_pb2.GetMeResponse.FromString,
    )
    await me(users_pb2.GetMeRequest())
    assert broken.calls == 0


def test_a_malformed_id_alone_is_named_in_the_message() -> None:
    # The seed's wording for GetUser's 400; any other problem, or several, is "Invalid request".
    assert check_request(users_pb2.GetUserRequest(user_id="42")) == (
        [("user_id", "must be a user id (UUID)")],
        "Invalid user ID format",
    )
    assert check_request(posts_pb2.GetPostRequest(post_id=""))[1] == "Invalid post ID format"
    assert check_request(users_pb2.UpdateUserRequest(user_id="42", phone="1"))[1] == "Invalid request"
    assert check_request(users_pb2.ListUsersRequest(page=0))[1] == "Invalid request"


def test_has_rules_looks_into_fields_and_nested_messages() -> None:
    assert has_rules(users_pb2.GetUserRequest.DESCRIPTOR)
    assert not has_rules(users_pb2.GetMeRequest.DESCRIPTOR)
    assert not has_rules(users_pb2.GetUserResponse.DESCRIPTOR)  # User declares none


def _nested_messages() -> tuple[Any, Any]:
    """portico.test.Outer {Inner inner; repeated Inner items}, Inner {string label, at most 3}: no
    Portico request nests rules yet, a future one will."""
    kind, label = descriptor_pb2.FieldDescriptorProto.Type, descriptor_pb2.FieldDescriptorProto.Label
    file = descriptor_pb2.FileDescriptorProto(
        name="portico_test/validation_nested.proto",
        package="portico.test",
        syntax="proto3",
        dependency=["buf/validate/validate.proto"],
    )
    inner = file.message_type.add(name="Inner")
    text = inner.field.add(name="label", number=1, type=kind.TYPE_STRING, label=label.LABEL_OPTIONAL)
    text.options.Extensions[validate_pb2.field].string.max_len = 3
    outer = file.message_type.add(name="Outer")
    for number, (name, cardinality) in enumerate(
        [("inner", label.LABEL_OPTIONAL), ("items", label.LABEL_REPEATED)], start=1
    ):
        outer.field.add(
            name=name,
            number=number,
            type=kind.TYPE_MESSAGE,
            type_name=".portico.test.Inner",
            label=cardinality,
        )
    pool = descriptor_pool.Default()
    pool.Add(file)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("portico.test.Outer")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("portico.test.Inner")),
    )


def test_nested_paths_are_dotted_without_indexes() -> None:
    outer, inner = _nested_messages()
    assert has_rules(outer.DESCRIPTOR)
    request = outer(
        inner=inner(label="abcd"), items=[inner(label="ok"), inner(label="long"), inner(label="xxxx")]
    )
    assert request_violations(request) == [
        ("inner.label", "must be at most 3 characters"),
        ("items.label", "must be at most 3 characters"),  # once, for the first item at fault
    ]
