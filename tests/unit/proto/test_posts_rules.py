"""The validation rules of posts.v1's requests (posts.proto), run by the real validator with the wording
clients see. They replace the posts backend's hand-written checks."""

from __future__ import annotations

import pytest

from meshkit.rpc.interceptors.validation import request_violations
from stubs.posts.v1 import posts_pb2

UUID = "0b9f4a8e-5a7e-4c61-9d7c-3f1f6a2b9c10"
BLANK_OR_CONTROLS = "must not be blank or contain control characters"
CONTENT_CONTROLS = "must not contain control characters other than line breaks and tabs"


def create(title: str = "Hello", content: str = "") -> dict[str, str]:
    return dict(request_violations(posts_pb2.CreatePostRequest(title=title, content=content)))


@pytest.mark.parametrize("title", ["Hello", "  Hello  ", "x" * 200, "Ünïcode — ok"])
def test_valid_titles(title: str) -> None:
    assert create(title) == {}


@pytest.mark.parametrize(
    ("title", "rule"),
    [
        ("", "must be 1-200 characters"),
        ("x" * 201, "must be 1-200 characters"),
        ("   ", BLANK_OR_CONTROLS),
        ("a\nb", BLANK_OR_CONTROLS),
        ("a\x07", BLANK_OR_CONTROLS),
    ],
)
def test_invalid_titles(title: str, rule: str) -> None:
    assert create(title) == {"title": rule}


@pytest.mark.parametrize(
    ("content", "problems"),
    [
        ("", {}),
        ("First\nline\r\n\tindented", {}),
        ("x" * 10_000, {}),
        ("x" * 10_001, {"content": "must be at most 10000 characters"}),
        ("bell\x07", {"content": CONTENT_CONTROLS}),
        ("esc\x1b[31m", {"content": CONTENT_CONTROLS}),
    ],
)
def test_content(content: str, problems: dict[str, str]) -> None:
    assert create(content=content) == problems


def test_update_checks_only_what_it_sets() -> None:
    assert request_violations(posts_pb2.UpdatePostRequest(post_id=UUID)) == []
    assert request_violations(posts_pb2.UpdatePostRequest(post_id=UUID, content="")) == []
    problems = dict(request_violations(posts_pb2.UpdatePostRequest(post_id=UUID, title="", content="\x00")))
    assert problems.keys() == {"title", "content"}


@pytest.mark.parametrize(
    "message",
    [
        posts_pb2.GetPostRequest,
        posts_pb2.UpdatePostRequest,
        posts_pb2.DeletePostRequest,
        posts_pb2.GetPostImageRequest,
    ],
)
def test_post_ids_must_be_uuids(message: type) -> None:
    assert dict(request_violations(message(post_id="1"))) == {"post_id": "must be a post id (UUID)"}
    assert request_violations(message(post_id=UUID)) == []


@pytest.mark.parametrize(
    ("fields", "problems"),
    [
        ({}, {}),
        ({"author_id": UUID, "page": 2, "page_size": 100}, {}),
        ({"author_id": "nope"}, {"author_id": "must be an author id (UUID)"}),
        ({"page": 0}, {"page": "must be at least 1"}),
        ({"page_size": 0}, {"page_size": "must be between 1 and 100"}),
        ({"page_size": 101}, {"page_size": "must be between 1 and 100"}),
    ],
)
def test_list_posts(fields: dict[str, object], problems: dict[str, str]) -> None:
    assert dict(request_violations(posts_pb2.ListPostsRequest(**fields))) == problems
