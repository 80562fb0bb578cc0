"""Shaping response messages into the contract's success bodies."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import timestamp_pb2

from gateway.transcode.response import BinaryReply, binary_reply, json_reply, to_json
from stubs.auth.v1 import auth_pb2
from stubs.events.v1 import events_pb2
from stubs.portico.gateway.v1 import options_pb2
from stubs.posts.v1 import posts_pb2
from stubs.users.v1 import users_pb2

CREATED = timestamp_pb2.Timestamp(seconds=1705314600)  # 2024-01-15T10:30:00Z
USER = users_pb2.User(
    id="6f1c",
    tenant_id="default",
    username="ann",
    email="ann@example.com",
    roles=["user"],
    is_active=True,
    created_at=CREATED,
    updated_at=CREATED,
)
USER_JSON: dict[str, Any] = {
    "id": "6f1c",
    "tenant_id": "default",
    "username": "ann",
    "email": "ann@example.com",
    "first_name": "",
    "last_name": "",
    "phone": "",
    "avatar_url": "",
    "roles": ["user"],
    "is_active": True,
    "created_at": "2024-01-15T10:30:00Z",
    "updated_at": "2024-01-15T10:30:00Z",
}


def test_get_user_is_the_user_with_every_field() -> None:
    reply = json_reply(users_pb2.GetUserResponse(user=USER), response_body="user")
    assert reply.status == 200
    assert reply.body == {"data": USER_JSON}
    assert list(reply.body["data"]) == list(USER_JSON)  # field order, whatever is set


def test_list_users_envelope() -> None:
    message = users_pb2.ListUsersResponse(users=[USER, users_pb2.User(id="2")], total=2, page=1, page_size=20)
    body = json_reply(message).body
    assert set(body) == {"data"}
    assert body["data"]["total"] == 2
    assert (body["data"]["page"], body["data"]["page_size"]) == (1, 20)
    assert body["data"]["users"][0] == USER_JSON
    assert body["data"]["users"][1]["created_at"] is None  # unset sub-message: null, not missing
    assert body["data"]["users"][1]["roles"] == []


def test_empty_list_keeps_its_keys() -> None:
    assert json_reply(users_pb2.ListUsersResponse()).body == {
        "data": {"users": [], "total": 0, "page": 0, "page_size": 0}
    }


@pytest.mark.parametrize(
    ("image_url", "expected"),
    [(None, None), ("", ""), ("/api/v1/posts/p1/image", "/api/v1/posts/p1/image")],
)
def test_post_optional_image_url(image_url: str | None, expected: str | None) -> None:
    post = posts_pb2.Post(id="p1", title="t", created_at=CREATED)
    if image_url is not None:
        post.image_url = image_url  # presence: even "" is set
    data = json_reply(posts_pb2.GetPostResponse(post=post), response_body="post").body["data"]
    assert data["image_url"] == expected
    assert list(data) == [
        "id", "tenant_id", "author_id", "title", "content", "image_url", "created_at", "updated_at",
    ]  # fmt: skip


def test_unset_response_body_is_null() -> None:
    assert json_reply(users_pb2.GetUserResponse(), response_body="user").body == {"data": None}


def test_real_oneof_shows_only_the_set_member() -> None:
    data = to_json(events_pb2.Event(event_id="e", user=users_pb2.User(id="u")))
    assert "post" not in data
    assert "auth_audit" not in data
    assert data["user"]["created_at"] is None
    assert data["actor"] is None  # an ordinary unset sub-message


@pytest.mark.parametrize(
    ("shape", "status", "enveloped"),
    [
        (None, 200, True),
        (options_pb2.ResponseShape(), 200, True),
        (options_pb2.ResponseShape(success_status=201), 201, True),
        (options_pb2.ResponseShape(success_status=202, omit_envelope=True), 202, False),
    ],
)
def test_policy_status_and_envelope(
    shape: options_pb2.ResponseShape | None, status: int, enveloped: bool
) -> None:
    reply = json_reply(users_pb2.DeleteUserResponse(message="User deleted successfully"), shape=shape)
    payload = {"message": "User deleted successfully"}
    assert reply.status == status
    assert reply.body == ({"data": payload} if enveloped else payload)


def test_a_fixed_body_replaces_the_payload() -> None:
    """Seed 001's register answers a fixed message whatever the response holds."""
    shape = options_pb2.ResponseShape(
        success_status=201, omit_envelope=True, fixed_body='{"message": "New User Created Successfully"}'
    )
    reply = json_reply(users_pb2.GetMeResponse(user=USER), response_body="user", shape=shape)
    assert (reply.status, reply.body) == (201, {"message": "New User Created Successfully"})


def test_members_pick_and_rename_payload_fields_in_their_order() -> None:
    login = auth_pb2.LoginResponse(access_token="a", refresh_token="r", token_type="bearer", expires_in=600)  # noqa: S106
    shape = options_pb2.ResponseShape(
        omit_envelope=True,
        members=[
            options_pb2.Member(name="token", field="access_token"),
            options_pb2.Member(name="token_type"),
        ],
    )
    body = json_reply(login, shape=shape).body
    assert body == {"token": "a", "token_type": "bearer"}
    assert list(body) == ["token", "token_type"]
    # Members of a response_body field's object; still inside the envelope unless it is omitted.
    picked = json_reply(
        users_pb2.GetMeResponse(user=USER),
        response_body="user",
        shape=options_pb2.ResponseShape(
            members=[options_pb2.Member(name="id"), options_pb2.Member(name="username")]
        ),
    )
    assert picked.body == {"data": {"id": "6f1c", "username": "ann"}}


def test_a_repeated_response_body_without_envelope_is_a_bare_array() -> None:
    listed = users_pb2.ListUsersResponse(users=[USER], total=1, page=1, page_size=20)
    reply = json_reply(listed, response_body="users", shape=options_pb2.ResponseShape(omit_envelope=True))
    assert reply.body == [USER_JSON]


def test_unknown_response_body_is_a_gateway_bug() -> None:
    with pytest.raises(ValueError, match="not a field"):
        json_reply(users_pb2.GetUserResponse(), response_body="users")


def test_binary_reply() -> None:
    shape = options_pb2.ResponseShape(
        binary=options_pb2.BinaryBody(data_field="data", content_type_field="content_type", etag_field="etag")
    )
    message = posts_pb2.GetPostImageResponse(data=b"\x89PNG", content_type="image/png", etag="abc")
    assert binary_reply(message, shape) == BinaryReply(200, b"\x89PNG", "image/png", "abc")
    assert binary_reply(posts_pb2.GetPostImageResponse(data=b"x"), shape).content_type == (
        "application/octet-stream"
    )
    with pytest.raises(ValueError, match="no binary data field"):
        binary_reply(message, options_pb2.ResponseShape())
