"""Seed 002 (a Go auth service and a NestJS posts service) through the gateway: its client's own flow,
paths and field names — register, log in (the documented GET with a body, and a POST), the `/users/`
CRUD including `PUT /users/` on the caller's own profile, and the posts routes — served by the same
RPCs as /api/v1."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from harness.accounts import PASSWORD
from harness.auth import ADMIN_PASSWORD
from harness.images import image_bytes

pytestmark = pytest.mark.infra


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert list(body) == ["token"]
    token: str = body["token"]
    return token


def test_register_login_users_and_posts_as_seed_002s_client_does(client: httpx.Client) -> None:
    username = f"s2{uuid.uuid4().hex[:8]}"
    email = f"{username}@example.com"
    registered = _token(
        client.post("/auth/reg", json={"username": username, "email": email, "password": PASSWORD})
    )
    credentials = {"email": email, "password": PASSWORD}
    # As documented: a GET carrying the credentials in a JSON body; and the POST any client can send.
    token = _token(client.request("GET", "/auth/login", json=credentials))
    assert _token(client.post("/auth/login", json=credentials)) != token
    wrong = client.post("/auth/login", json={"email": email, "password": "not-the-password"})
    assert wrong.status_code == 401
    auth = _bearer(token)

    listed = client.get("/users/", headers=auth)
    assert listed.status_code == 200, listed.text
    assert isinstance(listed.json(), list)
    assert all({"id", "email"} <= set(user) for user in listed.json())
    me = client.get("/user/me", headers=_bearer(registered)).json()
    one = client.get(f"/users/{me['id']}", headers=auth)
    assert one.status_code == 200
    assert {"id": me["id"], "email": email}.items() <= one.json().items()

    # PUT /users/ without an id: the caller's own profile, whatever id the body names.
    updated = client.put("/users/", json={"first_name": "Ivan", "user_id": str(uuid.uuid4())}, headers=auth)
    assert updated.status_code == 200, updated.text
    assert (updated.json()["id"], updated.json()["first_name"]) == (me["id"], "Ivan")

    png = image_bytes("image/png", size=(8, 8), seed=2)
    created = client.post(
        "/posts",
        data={"title": "Привет", "content": "first post"},
        files={"image": ("photo.png", png, "image/png")},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    post = created.json()
    assert {"title": "Привет", "content": "first post", "author_id": me["id"]}.items() <= post.items()
    assert post["image_url"]
    posts = client.get("/posts", headers=auth)
    assert posts.status_code == 200
    assert post["id"] in {p["id"] for p in posts.json()}
    changed = client.put(f"/posts/{post['id']}", json={"title": "Hello"}, headers=auth)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["id"], changed.json()["title"], changed.json()["content"]) == (
        post["id"],
        "Hello",
        "first post",
    )
    removed = client.delete(f"/posts/{post['id']}", headers=auth)
    assert (removed.status_code, removed.json()) == (200, {"message": "Post deleted successfully"})

    gone = client.delete(f"/users/{me['id']}", headers=auth)
    assert (gone.status_code, gone.json()) == (200, {"message": "User deleted successfully"})
    assert client.get("/users/", headers=auth).status_code == 401


def test_an_admin_creates_a_user_with_post_users_slash(client: httpx.Client) -> None:
    admin = _token(client.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}))
    username = f"s2{uuid.uuid4().hex[:8]}"
    created = client.post(
        "/users/", json={"username": username, "email": f"{username}@example.com"}, headers=_bearer(admin)
    )
    assert created.status_code == 200, created.text
    assert list(created.json()) == ["id", "email"]
    assert created.json()["email"] == f"{username}@example.com"
    bad_id = client.get("/users/42", headers=_bearer(admin))
    assert bad_id.status_code == 400
    assert bad_id.json()["error"]["code"] == "BAD_REQUEST"
