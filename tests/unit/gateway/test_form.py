"""urlencoded forms: decoding, and binding as query parameters (typed, the uploads' own fields refused)."""

from __future__ import annotations

import pytest

from gateway.form import form_fields, without_oauth_extras
from gateway.transcode.violations import TranscodeError
from gateway.uploads import UploadPolicy
from stubs.auth.v1 import auth_pb2
from stubs.portico.gateway.v1 import options_pb2
from stubs.posts.v1 import posts_pb2
from stubs.users.v1 import users_pb2

IMAGE = options_pb2.Upload(form_field="image", bytes_field="image", content_type_field="image_content_type")


def test_fields_are_decoded_in_order_and_blank_ones_dropped() -> None:
    body = b"username=ann+lee&password=p%C3%A4ss%26word&phone=&roles=a&roles=b"
    assert form_fields(body) == [
        ("username", "ann lee"),
        ("password", "päss&word"),
        ("roles", "a"),
        ("roles", "b"),
    ]


@pytest.mark.parametrize("body", [b"name=%FF", b"name=\xff"])
def test_a_form_that_is_not_utf8_is_refused(body: bytes) -> None:
    with pytest.raises(TranscodeError) as refused:
        form_fields(body)
    assert refused.value.violations == [("body", "must be UTF-8, percent-encoded")]


def test_fields_are_typed_as_query_parameters() -> None:
    message = users_pb2.ListUsersRequest()
    UploadPolicy((), 1, 1).bind_fields(message, form_fields(b"page=2&page_size=50"), {})
    assert message == users_pb2.ListUsersRequest(page=2, page_size=50)
    with pytest.raises(TranscodeError) as refused:
        UploadPolicy((), 1, 1).bind_fields(users_pb2.ListUsersRequest(), [("page", "two")], {})
    assert [field for field, _ in refused.value.violations] == ["page"]


def test_an_unknown_field_the_path_or_the_file_field_is_refused() -> None:
    policy = UploadPolicy([IMAGE], 1, 1)
    message = posts_pb2.UpdatePostRequest(post_id="p1")
    fields = [
        ("title", "t"),
        ("colour", "red"),
        ("post_id", "p2"),
        ("image", "not-sniffed"),
        ("image_content_type", "image/png"),
    ]
    with pytest.raises(TranscodeError) as refused:
        policy.bind_fields(message, fields, {"post_id": "p1"})
    assert [field for field, _ in refused.value.violations] == [
        "colour",
        "post_id",
        "image",
        "image_content_type",
    ]


def test_an_oauth_token_request_s_own_fields_are_dropped() -> None:
    fields = form_fields(
        b"grant_type=password&username=ann&password=pw&scope=read&client_id=app&client_secret=s3"
    )
    login = auth_pb2.LoginRequest.DESCRIPTOR
    assert without_oauth_extras(fields, login) == [("username", "ann"), ("password", "pw")]
    other = [("grant_type", "client_credentials"), ("username", "ann")]
    assert without_oauth_extras(other, login) == other  # not a grant Portico serves: refused later
