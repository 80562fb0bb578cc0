"""Accounts an admin creates, through the gateway and the real mesh: create with a password, log in, change
the password (the other login ends, this one goes on), admin reset (the next login must change it)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.auth import ADMIN_PASSWORD
from harness.kafka import read_topic
from harness.mesh import Mesh
from harness.processes import wait_until

pytestmark = pytest.mark.infra
TENANT = "default"  # the bootstrap admin's
FIRST, SECOND, RESET = (f"Pass-{uuid.uuid4().hex[:12]}" for _ in range(3))


@pytest.fixture
def client(mesh: Mesh) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mesh.gateway_url, timeout=20) as http:
        yield http


def login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    return client.post(
        "/api/v1/auth/login", json={"tenant_id": TENANT, "username": username, "password": password}
    )


def bearer(data: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {data['access_token']}"}


@pytest.fixture
def admin(client: httpx.Client) -> dict[str, str]:
    wait_until(lambda: login(client, "admin", ADMIN_PASSWORD).status_code == 200, 30, "the bootstrap admin")
    return bearer(login(client, "admin", ADMIN_PASSWORD).json()["data"])


def test_create_login_change_and_reset(client: httpx.Client, admin: dict[str, str], mesh: Mesh) -> None:
    name = f"p{uuid.uuid4().hex[:10]}"
    created = client.post("/api/v1/users", json={"username": name, "password": FIRST}, headers=admin)
    assert created.status_code == 201, created.text
    user = created.json()["data"]
    assert (user["username"], user["email"]) == (name, "")
    assert "password" not in created.text
    assert FIRST not in created.text

    first = login(client, name, FIRST)
    assert first.status_code == 200, first.text
    assert first.json()["data"]["password_change_required"] is False
    current, other = first.json()["data"], login(client, name, FIRST).json()["data"]

    wrong = client.post(
        "/api/v1/auth/password",
        json={"old_password": "not-it-at-all", "new_password": SECOND},
        headers=bearer(current),
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "UNAUTHORIZED"
    weak = client.post(
        "/api/v1/auth/password",
        json={"old_password": FIRST, "new_password": "password123"},
        headers=bearer(current),
    )
    assert weak.status_code == 400
    assert [d["field"] for d in weak.json()["error"]["details"]] == ["new_password"]
    changed = client.post(
        "/api/v1/auth/password", json={"old_password": FIRST, "new_password": SECOND}, headers=bearer(current)
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"data": {"status": "password changed"}}
    # The other login's token is refused at once; the caller's own still works.
    assert client.get("/api/v1/users/me", headers=bearer(other)).status_code == 401
    assert client.get("/api/v1/users/me", headers=bearer(current)).status_code == 200
    assert login(client, name, FIRST).status_code == 401

    not_admin = client.post(
        f"/api/v1/users/{user['id']}/password-reset", json={"new_password": RESET}, headers=bearer(current)
    )
    assert not_admin.status_code == 403
    reset = client.post(
        f"/api/v1/users/{user['id']}/password-reset", json={"new_password": RESET}, headers=admin
    )
    assert reset.status_code == 200, reset.text
    assert reset.json() == {"data": {"status": "password reset"}}
    assert client.get("/api/v1/users/me", headers=bearer(current)).status_code == 401  # every login ended
    assert login(client, name, SECOND).status_code == 401

    flagged = login(client, name, RESET)
    assert flagged.status_code == 200, flagged.text
    assert flagged.json()["data"]["password_change_required"] is True
    assert client.get("/api/v1/users/me", headers=bearer(flagged.json()["data"])).status_code == 200
    # A refresh keeps saying so until the password is changed.
    refreshed = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": flagged.json()["data"]["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["data"]["password_change_required"] is True
    again = refreshed.json()["data"]
    done = client.post(
        "/api/v1/auth/password", json={"old_password": RESET, "new_password": FIRST}, headers=bearer(again)
    )
    assert done.status_code == 200, done.text
    final = login(client, name, FIRST)
    assert final.status_code == 200
    assert final.json()["data"]["password_change_required"] is False

    # No password the test used is in anything the mesh's processes said, or in the events about the
    # user: its creation, and the credential's creation, change and reset (values, keys and headers).
    said = "\n".join(proc.log() for proc in mesh.procs.values())
    bootstrap = mesh.env["PORTICO_KAFKA_BOOTSTRAP"]
    audit = {"credential.created", "password.changed", "password.reset"}
    published = asyncio.run(
        read_topic(bootstrap, "portico.users.v1", lambda e: e.entity_id == user["id"], want=1, raw=True)
    ) + asyncio.run(
        read_topic(
            bootstrap,
            "portico.auth.v1",
            lambda e: e.type in audit and e.auth_audit.user_id == user["id"],
            want=4,  # created, changed, reset, changed again
            raw=True,
        )
    )
    assert len(published) == 5
    for secret in (FIRST, SECOND, RESET):
        assert secret not in said
        assert not [record for record in published if secret.encode() in record]


def test_create_user_validates_the_password_and_the_names(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    name = f"p{uuid.uuid4().hex[:10]}"
    short = client.post("/api/v1/users", json={"username": name, "password": "short"}, headers=admin)
    assert short.status_code == 400
    assert [d["field"] for d in short.json()["error"]["details"]] == ["password"]
    common = client.post("/api/v1/users", json={"username": name, "password": "password123"}, headers=admin)
    assert common.status_code == 400, common.text
    assert [d["field"] for d in common.json()["error"]["details"]] == ["password"]
    nameless = client.post("/api/v1/users", json={"first_name": "Nobody"}, headers=admin)
    assert nameless.status_code == 400
    assert [d["field"] for d in nameless.json()["error"]["details"]] == ["email"]
    # The refused creations left nothing behind: the username is free.
    created = client.post("/api/v1/users", json={"username": name, "password": FIRST}, headers=admin)
    assert created.status_code == 201, created.text
