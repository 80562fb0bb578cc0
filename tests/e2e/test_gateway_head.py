"""HEAD on every GET route through the real mesh: the GET's status and headers, no body; 405 and Allow."""

from __future__ import annotations

import uuid

import httpx
import pytest

from harness.accounts import bearer, register
from harness.images import image_bytes

pytestmark = pytest.mark.infra

# Headers a GET and its HEAD must agree on (the request id, date and remaining quota differ per request).
SAME = ("content-type", "content-length", "etag", "cache-control", "x-content-type-options", "vary")


@pytest.fixture
def auth(client: httpx.Client) -> dict[str, str]:
    return bearer(register(client, f"head-{uuid.uuid4().hex[:8]}"))


def assert_head_like_get(client: httpx.Client, path: str, headers: dict[str, str]) -> httpx.Response:
    # A HEAD is never compressed (gateway/compression.py): compared with the GET's identity answer.
    headers = {**headers, "Accept-Encoding": "identity"}
    got = client.get(path, headers=headers)
    head = client.head(path, headers={**headers, "Accept-Encoding": "gzip, br"})
    assert "content-encoding" not in head.headers
    assert head.status_code == got.status_code, head.headers
    assert head.content == b""
    for name in SAME:
        assert head.headers.get(name) == got.headers.get(name), name
    assert "x-request-id" in head.headers
    assert ("x-ratelimit-limit" in head.headers) == ("x-ratelimit-limit" in got.headers)
    return head


def test_head_of_json_routes_has_the_get_headers(client: httpx.Client, auth: dict[str, str]) -> None:
    me = assert_head_like_get(client, "/api/v1/users/me", auth)
    assert me.status_code == 200
    assert "x-ratelimit-limit" in me.headers
    assert int(me.headers["content-length"]) > 0
    assert assert_head_like_get(client, "/api/v1/users?page_size=5", auth).status_code == 200
    # Errors too: a HEAD of an unknown user is the GET's 404, its envelope's length announced.
    missing = assert_head_like_get(client, f"/api/v1/users/{uuid.uuid4()}", auth)
    assert missing.status_code == 404
    assert assert_head_like_get(client, "/api/v1/users/me", {}).status_code == 401


def test_head_of_an_image_has_its_etag_and_length(client: httpx.Client, auth: dict[str, str]) -> None:
    png = image_bytes("image/png", size=(12, 8), seed=3)
    created = client.post(
        "/api/v1/posts", data={"title": "t"}, files={"image": ("a.png", png, "image/png")}, headers=auth
    )
    assert created.status_code == 201, created.text
    path = created.json()["data"]["image_url"]
    head = assert_head_like_get(client, path, auth)
    assert head.headers["content-length"] == str(len(png))
    assert head.headers["etag"]
    again = client.head(path, headers={**auth, "If-None-Match": head.headers["etag"]})
    assert again.status_code == 304


def test_head_of_a_stream_answers_its_head_without_opening_it(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    head = client.head("/api/v1/topics/news/messages", headers={**auth, "Accept": "text/event-stream"})
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert head.content == b""


def test_head_of_operations_routes(client: httpx.Client) -> None:
    for path in ("/health", "/openapi.json"):
        assert assert_head_like_get(client, path, {}).status_code == 200


def test_405_allows_head_where_get_is(client: httpx.Client, auth: dict[str, str]) -> None:
    refused = client.delete("/api/v1/users", headers=auth)
    assert refused.status_code == 405
    assert refused.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert refused.headers["allow"] == "GET, HEAD, POST"
    post_only = client.head("/api/v1/auth/login")
    assert post_only.status_code == 405
    assert post_only.headers["allow"] == "POST"
    assert post_only.content == b""
