"""Compressed JSON answers through the real mesh: gzip and br as Accept-Encoding prefers, Vary, the
threshold, /openapi.json, and never an image, a stream or a HEAD."""

from __future__ import annotations

import gzip
import uuid

import brotli
import httpx
import pytest

from harness.accounts import bearer, register
from harness.images import large_png

pytestmark = pytest.mark.infra


def raw_get(client: httpx.Client, path: str, accept: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """The answer and its body as sent (httpx would decode it)."""
    with client.stream("GET", path, headers={"Accept-Encoding": accept, **headers}) as response:
        return response, b"".join(response.iter_raw())


def test_openapi_json_in_each_coding(client: httpx.Client) -> None:
    plain, identity = raw_get(client, "/openapi.json", "identity")
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    zipped, gz = raw_get(client, "/openapi.json", "gzip")
    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(gz) == identity
    assert int(zipped.headers["content-length"]) == len(gz) < len(identity) / 4
    for accept in ("gzip, deflate, br", "br;q=1, gzip;q=0.5"):
        answer, br = raw_get(client, "/openapi.json", accept)
        assert answer.headers["content-encoding"] == "br"
        assert brotli.decompress(br) == identity
    preferred, _ = raw_get(client, "/openapi.json", "br;q=0.4, gzip;q=0.9")
    assert preferred.headers["content-encoding"] == "gzip"


def test_api_answers_above_the_threshold_only(client: httpx.Client) -> None:
    tenant = f"gz-{uuid.uuid4().hex[:8]}"
    auth = bearer(register(client, tenant))
    for _ in range(6):
        register(client, tenant)
    small, body = raw_get(client, "/api/v1/users/me", "gzip", **auth)
    assert len(body) < 1024
    assert "content-encoding" not in small.headers
    assert "vary" not in small.headers  # never compressed at this size: nothing varies
    listed, gz = raw_get(client, "/api/v1/users?page_size=7", "gzip", **auth)
    assert listed.status_code == 200
    assert listed.headers["content-encoding"] == "gzip"
    assert listed.headers["vary"] == "Accept-Encoding"
    assert len(httpx.Response(200, content=gzip.decompress(gz)).json()["data"]["users"]) == 7
    assert "x-request-id" in listed.headers
    assert "x-ratelimit-limit" in listed.headers
    head = client.head("/api/v1/users?page_size=7", headers={**auth, "Accept-Encoding": "gzip"})
    assert "content-encoding" not in head.headers
    assert head.headers["vary"] == "Accept-Encoding"


def test_images_and_streams_are_never_compressed(client: httpx.Client) -> None:
    auth = bearer(register(client, f"gz-{uuid.uuid4().hex[:8]}"))
    png = large_png(4096)  # stored uncompressed: gzip would shrink it, were images compressed
    created = client.post(
        "/api/v1/posts", data={"title": "t"}, files={"image": ("a.png", png, "image/png")}, headers=auth
    )
    image, raw = raw_get(client, created.json()["data"]["image_url"], "gzip, br", **auth)
    assert "content-encoding" not in image.headers
    assert raw == png
    headers = {**auth, "Accept": "application/x-ndjson", "Accept-Encoding": "gzip, br"}
    with client.stream("GET", "/api/v1/topics/gz/messages", headers=headers) as stream:
        assert stream.status_code == 200
        assert "content-encoding" not in stream.headers
