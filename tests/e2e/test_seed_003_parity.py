"""Seed 003 (a Gin user service) through the gateway: its documented calls, query parameters, status
codes, pagination fields and error codes, as its cURL examples send them (with `X-Tenant-ID`), answer as
the seed documents. The differences that stay are in docs/api.md."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from harness.auth import ADMIN_PASSWORD

pytestmark = pytest.mark.infra
TENANT = "default"  # the bootstrap admin's tenant: creating a user is for admins in Portico


@pytest.fixture
def headers(client: httpx.Client) -> dict[str, str]:
    login = client.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['data']['access_token']}", "X-Tenant-ID": TENANT}


def _data(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


def _error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["status_code"]) == (code, status)
    assert error["message"]


def test_seed_003s_users_api_as_its_examples_call_it(client: httpx.Client, headers: dict[str, str]) -> None:
    assert client.get("/health").json() == {"status": "healthy"}
    assert client.get("/ready").json()["status"] in {"ready", "degraded"}

    word = uuid.uuid4().hex[:6]
    email = f"john.{word}@example.com"
    body = {
        "email": email,
        "tenant_id": TENANT,
        "first_name": "John",
        "last_name": "Doe",
        "phone": "+1234567890",
    }
    user = _data(client.post("/api/v1/users", json=body, headers=headers), 201)
    assert {k: user[k] for k in body} == body
    assert {"id", "avatar_url", "is_active", "created_at", "updated_at"} <= set(user)
    assert user["created_at"].endswith("Z")
    _error(client.post("/api/v1/users", json=body, headers=headers), 409, "CONFLICT")
    _error(client.post("/api/v1/users", json={**body, "email": "nope"}, headers=headers), 400, "BAD_REQUEST")

    assert _data(client.get(f"/api/v1/users/{user['id']}", headers=headers), 200) == user
    _error(client.get("/api/v1/users/507f1f77bcf86cd799439011", headers=headers), 400, "BAD_REQUEST")
    _error(client.get(f"/api/v1/users/{uuid.uuid4()}", headers=headers), 404, "NOT_FOUND")

    page = _data(client.get("/api/v1/users", params={"page": 1, "page_size": 20}, headers=headers), 200)
    assert set(page) == {"users", "total", "page", "page_size"}
    assert (page["page"], page["page_size"]) == (1, 20)
    assert len(page["users"]) == min(20, page["total"])
    _error(client.get("/api/v1/users", params={"page_size": 101}, headers=headers), 400, "BAD_REQUEST")
    _error(client.get("/api/v1/users", params={"page": 0}, headers=headers), 400, "BAD_REQUEST")

    found = _data(client.get("/api/v1/users/search", params={"q": f"john.{word}"}, headers=headers), 200)
    assert [u["id"] for u in found["users"]] == [user["id"]]
    assert (found["total"], found["page"], found["page_size"]) == (1, 1, 20)
    _error(client.get("/api/v1/users/search", params={"q": "j"}, headers=headers), 400, "BAD_REQUEST")
    _error(client.get("/api/v1/users/search", headers=headers), 400, "BAD_REQUEST")

    change = {"first_name": "Jane", "phone": "+1987654321", "last_name": ""}
    updated = _data(client.put(f"/api/v1/users/{user['id']}", json=change, headers=headers), 200)
    assert (updated["first_name"], updated["last_name"], updated["phone"]) == ("Jane", "Doe", "+1987654321")

    deleted = client.delete(f"/api/v1/users/{user['id']}", headers=headers)
    assert _data(deleted, 200) == {"message": "User deleted successfully"}
    _error(client.get(f"/api/v1/users/{user['id']}", headers=headers), 404, "NOT_FOUND")
    # The email is free again.
    assert _data(client.post("/api/v1/users", json=body, headers=headers), 201)["email"] == email

    _error(client.get("/api/v1/users"), 401, "UNAUTHORIZED")
    _error(client.get("/api/v1/users", headers={**headers, "X-Tenant-ID": "tenant123"}), 403, "FORBIDDEN")
    limited = client.get("/api/v1/users", headers=headers)
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(limited.headers)
