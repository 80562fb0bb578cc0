"""Traffic through the mesh that gives every dashboard panel a series: sign-ups and logins (a wrong
password, a refresh and its replay), users CRUD with cache hits, a 401/403/404, a post with an image,
a broker publish and SSE subscription, and gRPC calls without a valid token straight to a backend."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import httpx
import pytest

from harness.accounts import PASSWORD, registration
from harness.images import image_bytes
from harness.mesh import Mesh


def expect(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url}: {response.text}"
    )
    is_json = response.headers.get("content-type", "").startswith("application/json")
    body: dict[str, Any] = response.json() if is_json else {}
    return body


def register(client: httpx.Client, tenant: str) -> dict[str, Any]:
    """A new user's registration ``data``, its ``username`` added (the logins need it)."""
    body = registration(tenant)
    data: dict[str, Any] = expect(client.post("/api/v1/auth/register", json=body), 201)["data"]
    data["username"] = body["username"]
    return data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def auth_flows(client: httpx.Client, tenant: str) -> dict[str, str]:
    """Logins (good, wrong password), a refresh and a replay of the spent token; a fresh user's header."""
    user = register(client, tenant)
    login = {"tenant_id": tenant, "username": user["username"]}
    expect(client.post("/api/v1/auth/login", json={**login, "password": "not-the-password"}), 401)
    tokens = expect(client.post("/api/v1/auth/login", json={**login, "password": PASSWORD}), 200)["data"]
    spent = tokens["refresh_token"]
    expect(client.post("/api/v1/auth/refresh", json={"refresh_token": spent}), 200)
    expect(client.post("/api/v1/auth/refresh", json={"refresh_token": spent}), 401)  # reuse detected
    return bearer(register(client, tenant)["access_token"])


def users_crud(client: httpx.Client, tenant: str, auth: dict[str, str]) -> None:
    me = expect(client.get("/api/v1/users/me", headers=auth), 200)["data"]
    for _ in range(2):  # a miss, then a hit of the users cache
        expect(client.get(f"/api/v1/users/{me['id']}", headers=auth), 200)
    expect(client.patch(f"/api/v1/users/{me['id']}", json={"first_name": "Dash"}, headers=auth), 200)
    expect(client.get(f"/api/v1/users/{uuid.uuid4()}", headers=auth), 404)
    expect(client.get("/api/v1/users/me"), 401)
    expect(client.post("/api/v1/users", json={"username": "nope"}, headers=auth), 403)  # admins only
    leaving = register(client, tenant)
    expect(
        client.delete(f"/api/v1/users/{leaving['user']['id']}", headers=bearer(leaving["access_token"])), 200
    )


def posts(client: httpx.Client, auth: dict[str, str]) -> None:
    png = image_bytes("image/png", size=(20, 10), seed=7)
    created = client.post(
        "/api/v1/posts",
        data={"title": "Dashboards", "content": "with a picture"},
        files={"image": ("a.png", png)},
        headers=auth,
    )
    post = expect(created, 201)["data"]
    expect(client.get(post["image_url"], headers=auth), 200)
    expect(client.get("/api/v1/posts", headers=auth), 200)
    expect(client.delete(f"/api/v1/posts/{post['id']}", headers=auth), 200)


def broker(client: httpx.Client, auth: dict[str, str]) -> None:
    """Publish, then read it back over SSE (from the earliest offset) and leave."""
    expect(client.post("/api/v1/topics/dash/messages", json={"message": "hello"}, headers=auth), 202)
    headers = {**auth, "Accept": "text/event-stream"}
    with client.stream("GET", "/api/v1/topics/dash/messages?from=earliest", headers=headers) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:"):
                break


def unauthenticated_grpc(mesh: Mesh) -> None:
    """Internal clients call the backends directly: without a token, then with a forged one."""
    with grpc.insecure_channel(mesh.target("users")) as channel:
        get_me = channel.unary_unary(
            "/users.v1.UserService/GetMe", request_serializer=None, response_deserializer=None
        )
        for metadata in ((), (("authorization", "Bearer not-a-jwt"),)):
            with pytest.raises(grpc.RpcError) as refused:
                get_me(b"", metadata=metadata, timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, refused.value


def drive(mesh: Mesh) -> None:
    tenant = f"dash-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=mesh.gateway_url, timeout=30) as client:
        auth = auth_flows(client, tenant)
        users_crud(client, tenant, auth)
        posts(client, auth)
        broker(client, auth)
        expect(client.get("/ready"), 200)
    unauthenticated_grpc(mesh)
