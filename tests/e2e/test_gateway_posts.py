"""Posts through the real gateway and mesh: multipart and JSON create/update, the image with its ETag
(304), lists, 403/404/413/415 in the contract's envelope, and a deleted user's posts disappearing."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from harness.accounts import bearer, register_async
from harness.images import image_bytes, large_png
from harness.mesh import Mesh

pytestmark = pytest.mark.infra
MiB = 1024 * 1024


@pytest.fixture
async def client(mesh: Mesh) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mesh.gateway_url, timeout=30) as http:
        yield http


async def register(client: httpx.AsyncClient, tenant: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A new user of ``tenant`` and the Authorization header of its access token."""
    data = await register_async(client, tenant)
    return data["user"], bearer(data)


@pytest.fixture
def tenant() -> str:
    return f"posts-{uuid.uuid4().hex[:8]}"


def envelope(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["status_code"] == status
    assert error["request_id"] == response.headers["x-request-id"]
    return error


async def test_multipart_create_then_read_the_post_and_its_image(
    client: httpx.AsyncClient, tenant: str
) -> None:
    user, auth = await register(client, tenant)
    png = image_bytes("image/png", size=(20, 10), seed=1)
    created = await client.post(
        "/api/v1/posts",
        data={"title": "Hello", "content": "A picture"},
        files={"image": ("photo.jpg", png, "image/jpeg")},  # name and declared type say JPEG; it is a PNG
        headers=auth,
    )
    assert created.status_code == 201, created.text
    post = created.json()["data"]
    assert (post["title"], post["content"], post["author_id"], post["tenant_id"]) == (
        "Hello",
        "A picture",
        user["id"],
        tenant,
    )
    assert post["image_url"] == f"/api/v1/posts/{post['id']}/image"
    fetched = await client.get(f"/api/v1/posts/{post['id']}", headers=auth)
    assert fetched.json()["data"] == post

    image = await client.get(post["image_url"], headers=auth)
    assert image.status_code == 200
    assert image.content == png
    assert image.headers["content-type"] == "image/png"
    assert image.headers["etag"] == f'"{hashlib.sha256(png).hexdigest()}"'
    assert image.headers["cache-control"] == "private, no-cache"
    assert image.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in image.headers["content-security-policy"]
    again = await client.get(post["image_url"], headers={**auth, "If-None-Match": image.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")


async def test_json_create_and_updates_multipart_and_json(client: httpx.AsyncClient, tenant: str) -> None:
    _, auth = await register(client, tenant)
    created = await client.post(
        "/api/v1/posts", json={"title": "Plain", "content": "text only"}, headers=auth
    )
    assert created.status_code == 201, created.text
    post = created.json()["data"]
    assert post["image_url"] is None
    gif = image_bytes("image/gif", seed=2)
    updated = await client.put(
        f"/api/v1/posts/{post['id']}",
        data={"title": "With image"},
        files={"image": ("a.gif", gif, "image/gif")},
        headers=auth,
    )
    assert updated.status_code == 200, updated.text
    assert (updated.json()["data"]["title"], updated.json()["data"]["content"]) == ("With image", "text only")
    first_etag = (await client.get(f"/api/v1/posts/{post['id']}/image", headers=auth)).headers["etag"]
    webp = image_bytes("image/webp", seed=3)
    await client.put(
        f"/api/v1/posts/{post['id']}", files={"image": ("b.webp", webp, "image/webp")}, headers=auth
    )
    replaced = await client.get(
        f"/api/v1/posts/{post['id']}/image", headers={**auth, "If-None-Match": first_etag}
    )
    assert (replaced.status_code, replaced.content, replaced.headers["content-type"]) == (
        200,
        webp,
        "image/webp",
    )
    retitled = await client.put(f"/api/v1/posts/{post['id']}", json={"content": "edited"}, headers=auth)
    assert retitled.json()["data"]["content"] == "edited"
    assert retitled.json()["data"]["title"] == "With image"


async def test_lists_pages_and_the_author_filter(client: httpx.AsyncClient, tenant: str) -> None:
    alice, alice_auth = await register(client, tenant)
    _, bob_auth = await register(client, tenant)
    for n in range(3):
        await client.post("/api/v1/posts", json={"title": f"a{n}"}, headers=alice_auth)
    await client.post("/api/v1/posts", json={"title": "b0"}, headers=bob_auth)
    page = (await client.get("/api/v1/posts", params={"page_size": 2}, headers=bob_auth)).json()["data"]
    assert ([p["title"] for p in page["posts"]], page["total"], page["page"], page["page_size"]) == (
        ["b0", "a2"],
        4,
        1,
        2,
    )
    mine = await client.get("/api/v1/posts", params={"author_id": alice["id"]}, headers=bob_auth)
    assert [p["title"] for p in mine.json()["data"]["posts"]] == ["a2", "a1", "a0"]
    error = envelope(await client.get("/api/v1/posts", params={"page_size": 500}, headers=bob_auth), 400)
    assert [d["field"] for d in error["details"]] == ["page_size"]


async def test_refusals_in_the_envelope(client: httpx.AsyncClient, tenant: str) -> None:
    _, alice = await register(client, tenant)
    _, bob = await register(client, tenant)
    _, outsider = await register(client, f"{tenant}-x")
    post = (await client.post("/api/v1/posts", json={"title": "alice's"}, headers=alice)).json()["data"]
    url = f"/api/v1/posts/{post['id']}"

    envelope(await client.put(url, json={"title": "mine now"}, headers=bob), 403)
    envelope(await client.delete(url, headers=bob), 403)
    envelope(await client.get(url, headers=outsider), 404)
    envelope(await client.get("/api/v1/posts/not-a-uuid", headers=alice), 400)
    envelope(await client.get(url), 401)
    too_big = await client.post(
        "/api/v1/posts",
        data={"title": "big"},
        files={"image": ("big.png", large_png(5 * MiB + 1), "image/png")},
        headers=alice,
    )
    envelope(too_big, 413)
    pdf = b"%PDF-1.7\n" + b"1 0 obj\n" * 20
    envelope(
        await client.post(
            "/api/v1/posts",
            data={"title": "doc"},
            files={"image": ("a.png", pdf, "image/png")},
            headers=alice,
        ),
        415,
    )
    polyglot = image_bytes("image/png", seed=9) + b"<html><script>alert(1)</script></html>"
    envelope(
        await client.post(
            "/api/v1/posts",
            data={"title": "sly"},
            files={"image": ("a.png", polyglot, "image/png")},
            headers=alice,
        ),
        415,
    )
    error = envelope(await client.post("/api/v1/posts", json={"title": ""}, headers=alice), 400)
    assert [d["field"] for d in error["details"]] == ["title"]
    deleted = await client.delete(url, headers=alice)
    assert (deleted.status_code, deleted.json()["data"]["message"]) == (200, "Post deleted successfully")
    envelope(await client.get(url, headers=alice), 404)


async def test_a_deleted_user_s_posts_disappear(client: httpx.AsyncClient, tenant: str) -> None:
    alice, alice_auth = await register(client, tenant)
    _, bob_auth = await register(client, tenant)
    post = (await client.post("/api/v1/posts", json={"title": "soon gone"}, headers=alice_auth)).json()[
        "data"
    ]
    kept = (await client.post("/api/v1/posts", json={"title": "stays"}, headers=bob_auth)).json()["data"]
    gone = await client.delete(f"/api/v1/users/{alice['id']}", headers=alice_auth)
    assert gone.status_code == 200, gone.text
    for _ in range(300):
        listed = (await client.get("/api/v1/posts", headers=bob_auth)).json()["data"]
        if [p["id"] for p in listed["posts"]] == [kept["id"]]:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"alice's post is still listed: {listed}")
    envelope(await client.get(f"/api/v1/posts/{post['id']}", headers=bob_auth), 404)
