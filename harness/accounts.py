"""Accounts for the end-to-end tests: register a user through the real gateway and use its tokens."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

PASSWORD = "copper-Lantern-58"  # noqa: S105 (a test password)


def registration(tenant: str, username: str | None = None) -> dict[str, str]:
    """The body of ``POST /api/v1/auth/register`` for a new user (a random username unless given)."""
    username = username or f"u{uuid.uuid4().hex[:8]}"
    email = f"{username}@example.com"
    return {"tenant_id": tenant, "username": username, "email": email, "password": PASSWORD}


def registered(response: httpx.Response) -> dict[str, Any]:
    """The ``data`` of a successful registration: ``user``, ``access_token``, ``refresh_token``, …"""
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def bearer(data: dict[str, Any]) -> dict[str, str]:
    """The Authorization header of a registration's (or login's) access token."""
    return {"Authorization": f"Bearer {data['access_token']}"}


def register(client: httpx.Client, tenant: str, username: str | None = None) -> dict[str, Any]:
    return registered(client.post("/api/v1/auth/register", json=registration(tenant, username)))


async def register_async(
    client: httpx.AsyncClient, tenant: str, username: str | None = None
) -> dict[str, Any]:
    return registered(await client.post("/api/v1/auth/register", json=registration(tenant, username)))
