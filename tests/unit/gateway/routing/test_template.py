"""google.api.http path templates: parsing, matching, percent-decoding, and refused templates."""

from __future__ import annotations

import pytest

from gateway.routing.template import TemplateError, parse_template


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("/api/v1/users", "/api/v1/users", {}),
        ("/api/v1/users/{user_id}", "/api/v1/users/abc", {"user_id": "abc"}),
        ("/api/v1/users/{user_id}", "/api/v1/users/a%20b", {"user_id": "a b"}),
        # Decoded once: "%2541" is the text "%41", not "A".
        ("/api/v1/users/{user_id}", "/api/v1/users/%2541", {"user_id": "%41"}),
        ("/v1/{user.id}/posts/{post.id}", "/v1/u1/posts/p1", {"user.id": "u1", "post.id": "p1"}),
        ("/v1/{name=shelves/*}", "/v1/shelves/s1", {"name": "shelves/s1"}),
        ("/v1/{name=shelves/*/books/*}", "/v1/shelves/s1/books/b2", {"name": "shelves/s1/books/b2"}),
        ("/v1/{path=**}", "/v1/a/b/c", {"path": "a/b/c"}),
        ("/v1/{path=**}", "/v1", {"path": ""}),
        # A multi-segment variable keeps %2F encoded so segment boundaries survive.
        ("/v1/{path=files/**}", "/v1/files/a%2Fb/c%20d", {"path": "files/a%2Fb/c d"}),
        ("/v1/*/items", "/v1/anything/items", {}),
        ("/v1/**", "/v1/x/y/z", {}),
        ("/v1/{name=messages/*}:cancel", "/v1/messages/m1:cancel", {"name": "messages/m1"}),
        ("/v1/jobs:run", "/v1/jobs:run", {}),
        ("/v1/users%20list", "/v1/users list", {}),
        ("/v1/users%20list", "/v1/users%20list", {}),
        # A trailing slash is part of the path (seed 002's `/users/`).
        ("/users/", "/users/", {}),
    ],
)
def test_matches(template: str, path: str, expected: dict[str, str]) -> None:
    assert parse_template(template).match(path) == expected


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("/api/v1/users/{user_id}", "/api/v1/users"),
        ("/api/v1/users/{user_id}", "/api/v1/users/a/b"),
        ("/api/v1/users/{user_id}", "/api/v1/users/"),  # an empty segment is no value
        ("/api/v1/users/{user_id}", "/api/v1/users/a%2Fb"),  # '/' inside a single-segment variable
        ("/api/v1/users/{user_id}", "/api/v1/users/%FF"),  # not UTF-8
        ("/v1/{name=shelves/*}", "/v1/racks/s1"),
        ("/v1/{name=messages/*}:cancel", "/v1/messages/m1"),  # verb missing
        ("/v1/{name=messages/*}:cancel", "/v1/messages/m1:undo"),
        ("/v1/jobs", "v1/jobs"),
        ("/users/", "/users"),
        ("/users", "/users/"),
        ("/users/", "/users//"),
    ],
)
def test_does_not_match(template: str, path: str) -> None:
    assert parse_template(template).match(path) is None


def test_compiled_shape_ignores_variable_names() -> None:
    assert parse_template("/u/{id}").shape() == parse_template("/u/{user_id}").shape()
    assert parse_template("/u/{id}").shape() != parse_template("/u/{id}:verb").shape()
    assert parse_template("/u/{a.b}").field_paths == ("a.b",)


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("api/v1/users", "must start with '/'"),
        ("/api//users", "empty segment"),
        ("/", "empty segment"),
        ("/api/{user_id", "unbalanced '{'"),
        ("/api/user_id}", "unbalanced '}'"),
        ("/api/{a={b}}", "variables cannot nest"),
        ("/api/{1abc}", "bad field path"),
        ("/api/{a..b}", "bad field path"),
        ("/api/{id}/{id}", "bound twice"),
        ("/api/**/x", "'**' must be the last segment"),
        ("/api/{p=**}/x", "'**' must be the last segment"),
        ("/api/v1:", "bad verb"),
        ("/api/a*b", "bad literal segment"),
    ],
)
def test_bad_templates(template: str, reason: str) -> None:
    with pytest.raises(TemplateError, match=reason.replace("*", r"\*")):
        parse_template(template)
