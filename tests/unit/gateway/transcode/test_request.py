"""Building request messages from path variables, query strings and JSON bodies (users.v1 routes)."""

from __future__ import annotations

import json
import math

import pytest
from google.protobuf import wrappers_pb2
from google.protobuf.message import Message

from gateway.transcode.errors import from_transcode_error
from gateway.transcode.request import build_request
from gateway.transcode.violations import TranscodeError
from stubs.events.v1 import events_pb2
from stubs.portico.gateway.v1 import options_pb2
from stubs.posts.v1 import posts_pb2
from stubs.users.v1 import users_pb2

Query = list[tuple[str, str]]


def body(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("message_class", "body_rule", "path", "query", "raw", "expected"),
    [
        pytest.param(
            users_pb2.GetUserRequest,
            "",
            {"user_id": "abc"},
            [],
            b"",
            users_pb2.GetUserRequest(user_id="abc"),
            id="get-user-path",
        ),
        pytest.param(
            users_pb2.GetUserRequest,
            "",
            {"user_id": "abc"},
            [("tenant_id", "t1")],
            b"",
            users_pb2.GetUserRequest(user_id="abc", tenant_id="t1"),
            id="get-user-path-and-query",
        ),
        pytest.param(
            users_pb2.ListUsersRequest,
            "",
            {},
            [("page", "2"), ("page_size", "50")],
            b"",
            users_pb2.ListUsersRequest(page=2, page_size=50),
            id="list-users-typed",
        ),
        pytest.param(
            users_pb2.ListUsersRequest,
            "",
            {},
            [("pageSize", "-3"), ("tenantId", "t")],
            b"",
            users_pb2.ListUsersRequest(page_size=-3, tenant_id="t"),
            id="list-users-json-names",
        ),
        pytest.param(
            users_pb2.ListUsersRequest,
            "",
            {},
            [],
            b"  \n",
            users_pb2.ListUsersRequest(),
            id="whitespace-body-is-no-body",
        ),
        pytest.param(
            users_pb2.SearchUsersRequest,
            "",
            {},
            [("q", '"John Doe"'), ("page", "1")],
            b"",
            users_pb2.SearchUsersRequest(q='"John Doe"', page=1),
            id="search-users",
        ),
        pytest.param(
            users_pb2.UpdateUserRequest,
            "*",
            {"user_id": "u1"},
            [],
            body({"first_name": "Ann", "roles": ["a"]}),
            users_pb2.UpdateUserRequest(user_id="u1", first_name="Ann", roles=["a"]),
            id="update-user",
        ),
        pytest.param(
            users_pb2.UpdateUserRequest,
            "*",
            {"user_id": "u1"},
            [],
            body({"user_id": "other", "isActive": False}),
            users_pb2.UpdateUserRequest(user_id="u1", is_active=False),
            id="path-wins-over-body",
        ),
        pytest.param(
            users_pb2.CreateUserRequest,
            "*",
            {},
            [],
            body({"username": "ann", "email": "a@x.io", "phone": None}),
            users_pb2.CreateUserRequest(username="ann", email="a@x.io"),
            id="create-user-null-is-unset",
        ),
        pytest.param(
            users_pb2.CreateUserResponse,
            "user",
            {"user.id": "u9"},
            [],
            body({"id": "x", "roles": ["r"]}),
            users_pb2.CreateUserResponse(user=users_pb2.User(id="u9", roles=["r"])),
            id="body-field-nested-path",
        ),
        pytest.param(
            users_pb2.CreateUserResponse,
            "",
            {},
            [
                ("user.roles", "a"),
                ("user.roles", "b"),
                ("user.is_active", "true"),
                ("user.created_at", "2024-01-15T10:30:00Z"),
            ],
            b"",
            users_pb2.CreateUserResponse(user=users_pb2.User(roles=["a", "b"], is_active=True)),
            id="nested-repeated-bool-timestamp-query",
        ),
    ],
)
def test_binds(
    message_class: type[Message],
    body_rule: str,
    path: dict[str, str],
    query: Query,
    raw: bytes,
    expected: Message,
) -> None:
    built = build_request(message_class, body_rule=body_rule, path=path, query=query, body=raw)
    if isinstance(built, users_pb2.CreateUserResponse) and built.user.HasField("created_at"):
        assert built.user.created_at.ToJsonString() == "2024-01-15T10:30:00Z"
        built.user.ClearField("created_at")
    assert built == expected


def test_optional_presence_is_kept() -> None:
    empty = build_request(
        posts_pb2.UpdatePostRequest, body_rule="*", path={"post_id": "p"}, body=body({"title": ""})
    )
    assert empty.HasField("title")
    assert empty.title == ""
    assert not empty.HasField("content")
    falsy = build_request(users_pb2.UpdateUserRequest, body_rule="*", body=body({"is_active": False}))
    assert falsy.HasField("is_active")
    assert not build_request(users_pb2.UpdateUserRequest, body_rule="*", body=body({})).HasField("is_active")


@pytest.mark.parametrize(
    ("message_class", "body_rule", "path", "query", "raw", "message", "violations"),
    [
        pytest.param(
            users_pb2.ListUsersRequest,
            "",
            {},
            [("page", "abc")],
            b"",
            "Invalid request parameters",
            [("page", "must be an integer from -2147483648 to 2147483647")],
            id="page-not-int",
        ),
        pytest.param(
            users_pb2.ListUsersRequest,
            "",
            {},
            [("page_size", "99999999999"), ("page", "1.5")],
            b"",
            "Invalid request parameters",
            [
                ("page_size", "must be an integer from -2147483648 to 2147483647"),
                ("page", "must be an integer from -2147483648 to 2147483647"),
            ],
            id="out-of-range-and-float",
        ),
        pytest.param(
            users_pb2.ListUsersRequest,
            "",
            {},
            [("pagesize", "5"), ("page", "1")],
            b"",
            "Invalid request parameters",
            [("pagesize", "unknown parameter")],
            id="unknown-param",
        ),
        pytest.param(
            users_pb2.ListUsersRequest,
            "",
            {},
            [("page", "1"), ("page", "2")],
            b"",
            "Invalid request parameters",
            [("page", "given more than once")],
            id="singular-twice",
        ),
        pytest.param(
            users_pb2.GetUserRequest,
            "",
            {"user_id": "a"},
            [("user_id", "b")],
            b"",
            "Invalid request parameters",
            [("user_id", "unknown parameter")],
            id="query-cannot-rebind-path",
        ),
        pytest.param(
            users_pb2.UpdateUserRequest,
            "*",
            {"user_id": "a"},
            [("first_name", "x")],
            b"",
            "Invalid request parameters",
            [("first_name", "unknown parameter")],
            id="body-star-binds-all",
        ),
        pytest.param(
            users_pb2.CreateUserResponse,
            "",
            {},
            [("user", "x"), ("user.nope", "1"), ("user.is_active", "yes")],
            b"",
            "Invalid request parameters",
            [
                ("user", "cannot be set from a URL parameter"),
                ("user.nope", "unknown parameter"),
                ("user.is_active", "must be true or false"),
            ],
            id="message-leaf-unknown-nested-bad-bool",
        ),
        pytest.param(
            events_pb2.Event,
            "",
            {},
            [("occurred_at", "yesterday")],
            b"",
            "Invalid request parameters",
            [("occurred_at", "must be an RFC 3339 timestamp")],
            id="bad-timestamp",
        ),
        pytest.param(
            users_pb2.CreateUserRequest,
            "*",
            {},
            [],
            body({"username": "ann", "nickname": "A", "x": {"y": 1}}),
            "Invalid request body",
            [("nickname", "unknown field"), ("x", "unknown field")],
            id="unknown-body-fields",
        ),
        pytest.param(
            users_pb2.CreateUserRequest,
            "*",
            {},
            [],
            body({"roles": "admin", "email": 5, "username": "a"}),
            "Invalid request body",
            [("roles", "must be an array"), ("email", "must be a string")],
            id="wrong-body-types",
        ),
        pytest.param(
            users_pb2.CreateUserRequest,
            "*",
            {},
            [],
            body({"first_name": "a", "firstName": "b"}),
            "Invalid request body",
            [("firstName", "given twice (also as 'first_name')")],
            id="both-names",
        ),
        pytest.param(
            users_pb2.CreateUserResponse,
            "*",
            {},
            [],
            body({"user": {"roles": [1], "created_at": 3, "bad": 1}}),
            "Invalid request body",
            [
                ("user.roles", "every item must be a string"),
                ("user.created_at", "must be an RFC 3339 timestamp"),
                ("user.bad", "unknown field"),
            ],
            id="nested-body-paths",
        ),
        pytest.param(
            users_pb2.ListUsersResponse,
            "*",
            {},
            [],
            body({"users": [{}, {"oops": 1}, "x"]}),
            "Invalid request body",
            [("users[1].oops", "unknown field"), ("users[2]", "must be an object")],
            id="repeated-message-paths",
        ),
        pytest.param(
            events_pb2.Event,
            "*",
            {},
            [],
            body({"user": {}, "auth_audit": None, "post": {"id": "p"}}),
            "Invalid request body",
            [("post", "cannot be set together with 'user'")],
            id="two-oneof-members",
        ),
        pytest.param(
            users_pb2.CreateUserRequest,
            "*",
            {},
            [],
            body(["a"]),
            "Request body must be a JSON object",
            [],
            id="array-body",
        ),
        pytest.param(
            users_pb2.CreateUserRequest,
            "*",
            {},
            [],
            b'"text"',
            "Request body must be a JSON object",
            [],
            id="string-body",
        ),
        pytest.param(
            users_pb2.CreateUserRequest,
            "*",
            {},
            [],
            b"null",
            "Request body must be a JSON object",
            [],
            id="null-body",
        ),
        pytest.param(
            users_pb2.CreateUserRequest,
            "*",
            {},
            [],
            b'{"username": ',
            "Request body is not valid JSON",
            [],
            id="broken-json",
        ),
        pytest.param(
            users_pb2.CreateUserRequest,
            "*",
            {},
            [],
            b'{"username": "\xff"}',
            "Request body is not valid JSON",
            [],
            id="not-utf8",
        ),
        pytest.param(
            users_pb2.GetUserRequest,
            "",
            {"user_id": "a"},
            [],
            b"{}",
            "This route takes no request body",
            [],
            id="no-body-allowed",
        ),
    ],
)
def test_refuses(
    message_class: type[Message],
    body_rule: str,
    path: dict[str, str],
    query: Query,
    raw: bytes,
    message: str,
    violations: list[tuple[str, str]],
) -> None:
    with pytest.raises(TranscodeError) as caught:
        build_request(message_class, body_rule=body_rule, path=path, query=query, body=raw)
    assert caught.value.message == message
    assert caught.value.violations == violations
    # Nothing of the parser's wording (type names, field lists) reaches the client.
    text = str(from_transcode_error(caught.value))
    assert "users.v1" not in text
    assert "Available Fields" not in text


@pytest.mark.parametrize(
    ("text", "valid"),
    [("true", True), ("FALSE", True), ("1", True), ("0", True), ("yes", False), ("", False)],
)
def test_bool_spellings(text: str, valid: bool) -> None:
    query = [("user.is_active", text)]
    if valid:
        build_request(users_pb2.CreateUserResponse, query=query)
    else:
        with pytest.raises(TranscodeError):
            build_request(users_pb2.CreateUserResponse, query=query)


def test_a_wrong_path_variable_is_a_gateway_bug_not_a_400() -> None:
    # Templates come from the service's descriptors; routing checks them when the table is built.
    with pytest.raises(ValueError, match="not a field"):
        build_request(users_pb2.GetUserRequest, path={"nope": "x"})


def test_a_path_value_of_the_wrong_type_is_a_400() -> None:
    with pytest.raises(TranscodeError) as caught:
        build_request(users_pb2.ListUsersRequest, path={"page": "x"})
    assert caught.value.violations == [("page", "must be an integer from -2147483648 to 2147483647")]


def test_transcode_error_maps_to_400_with_details() -> None:
    with pytest.raises(TranscodeError) as caught:
        build_request(users_pb2.ListUsersRequest, query=[("page", "abc"), ("foo", "1")])
    reply = from_transcode_error(caught.value)
    assert (reply.status, reply.code, reply.message) == (400, "BAD_REQUEST", "Invalid request parameters")
    assert reply.details == [
        {"field": "page", "description": "must be an integer from -2147483648 to 2147483647"},
        {"field": "foo", "description": "unknown parameter"},
    ]
    no_details = from_transcode_error(TranscodeError("Request body is not valid JSON"))
    assert no_details.details is None


@pytest.mark.parametrize(
    ("message_class", "query", "expected"),
    [
        pytest.param(
            options_pb2.RoutePolicy,
            [("access", "ACCESS_PUBLIC"), ("rate_limit.key_fields", "email")],
            options_pb2.RoutePolicy(
                access=options_pb2.ACCESS_PUBLIC, rate_limit=options_pb2.RateLimit(key_fields=["email"])
            ),
            id="enum-by-name-and-nested-repeated",
        ),
        pytest.param(
            options_pb2.RoutePolicy,
            [("deadlineMs", "4294967295"), ("response.success_status", "201")],
            options_pb2.RoutePolicy(
                deadline_ms=4294967295, response=options_pb2.ResponseShape(success_status=201)
            ),
            id="uint32-max-and-nested",
        ),
        pytest.param(
            wrappers_pb2.DoubleValue,
            [("value", "-1.5e3")],
            wrappers_pb2.DoubleValue(value=-1500.0),
            id="double",
        ),
        pytest.param(
            wrappers_pb2.FloatValue,
            [("value", "Infinity")],
            wrappers_pb2.FloatValue(value=math.inf),
            id="float-special",
        ),
        pytest.param(
            wrappers_pb2.BytesValue,
            [("value", "aGk_")],
            wrappers_pb2.BytesValue(value=b"hi?"),
            id="bytes-url-safe-base64",
        ),
        pytest.param(
            wrappers_pb2.UInt64Value,
            [("value", "18446744073709551615")],
            wrappers_pb2.UInt64Value(value=2**64 - 1),
            id="uint64-max",
        ),
    ],
)
def test_query_types(message_class: type[Message], query: Query, expected: Message) -> None:
    assert build_request(message_class, query=query) == expected


@pytest.mark.parametrize(
    ("message_class", "query", "description"),
    [
        (
            options_pb2.RoutePolicy,
            [("access", "1")],
            "must be one of: ACCESS_UNSPECIFIED, ACCESS_PUBLIC, ACCESS_AUTHENTICATED",
        ),
        (options_pb2.RoutePolicy, [("deadline_ms", "-1")], "must be an integer from 0 to 4294967295"),
        (wrappers_pb2.DoubleValue, [("value", "1_0")], "must be a number"),
        (wrappers_pb2.DoubleValue, [("value", "1e999")], "must be a number"),
        (wrappers_pb2.FloatValue, [("value", "1e39")], "must be a number"),
        (wrappers_pb2.BytesValue, [("value", "a!")], "must be base64"),
        (wrappers_pb2.Int32Value, [("value", " 5")], "must be an integer from -2147483648 to 2147483647"),
    ],
)
def test_query_type_errors(message_class: type[Message], query: Query, description: str) -> None:
    with pytest.raises(TranscodeError) as caught:
        build_request(message_class, query=query)
    assert caught.value.violations == [(query[0][0], description)]


def test_optional_query_field_keeps_presence() -> None:
    built = build_request(users_pb2.UpdateUserRequest, query=[("is_active", "false")])
    assert built.HasField("is_active")
    # page=0 keeps its presence: the rules refuse it rather than taking the default.
    listing = build_request(users_pb2.ListUsersRequest, query=[("page", "0")])
    assert listing.HasField("page")
    assert not listing.HasField("page_size")


def test_a_body_nested_past_the_limit_is_refused_before_it_is_parsed() -> None:
    # Parsed, this would exhaust the interpreter's stack (RecursionError) instead of answering.
    deep = b'{"roles": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(TranscodeError) as caught:
        build_request(users_pb2.CreateUserRequest, body_rule="*", body=deep)
    assert caught.value.message == "Request body is nested too deeply (at most 32 levels)"
    assert caught.value.violations == []


def test_a_body_nested_as_deep_as_the_limit_is_parsed() -> None:
    raw = body({"roles": ["admin"]})  # two levels: the deepest Portico request
    built = build_request(users_pb2.CreateUserRequest, body_rule="*", body=raw, max_depth=2)
    assert list(built.roles) == ["admin"]
    with pytest.raises(TranscodeError, match="nested too deeply"):
        build_request(users_pb2.CreateUserRequest, body_rule="*", body=raw, max_depth=1)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"username": "ann", "username": "bob"}', "username"),
        (b'{"first_name": "a", "roles": ["x"], "first_name": "a"}', "first_name"),
    ],
)
def test_a_key_given_twice_is_refused_not_last_one_wins(raw: bytes, field: str) -> None:
    with pytest.raises(TranscodeError) as caught:
        build_request(users_pb2.CreateUserRequest, body_rule="*", body=raw)
    assert caught.value.message == "Invalid request body"
    assert caught.value.violations == [(field, "given twice")]
