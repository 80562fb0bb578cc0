"""Seed 001 (a FastAPI user service) through the gateway: its client's own flow, paths, field names and
answers, served by the same RPCs as /api/v1 (extra bindings with their own response shape)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from harness.accounts import PASSWORD

pytestmark = pytest.mark.infra


def test_register_login_me_refresh_as_seed_001s_client_does(client: httpx.Client) -> None:
    username = f"s1{uuid.uuid4().hex[:8]}"
    account = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}

    created = client.post("/user/register", json=account)
    assert (created.status_code, created.json()) == (201, {"message": "New User Created Successfully"})
    again = client.post("/user/register", json=account)
    assert (again.status_code, again.json()) == (
        409,
        {"detail": "User with these credentials already exists"},
    )

    login = client.post("/user/login", json={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    pair = login.json()
    assert list(pair) == ["access_token", "token_type", "refresh_token"]
    assert pair["token_type"] == "bearer"  # noqa: S105 (the OAuth token_type value)
    wrong = client.post("/user/login", json={"username": username, "password": "not-the-password"})
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "Invalid username or password"})
    # The seed's login also takes a form, as FastAPI's OAuth2PasswordRequestForm clients send it.
    form = {"grant_type": "password", "username": username, "password": PASSWORD}
    by_form = client.post("/user/login", data=form)
    assert by_form.status_code == 200, by_form.text
    assert list(by_form.json()) == ["access_token", "token_type", "refresh_token"]

    me = client.get("/user/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200, me.text
    profile = me.json()
    assert {"username": username, "email": account["email"]}.items() <= profile.items()
    assert {"created_at", "updated_at"} <= set(profile)
    # Registered with no tenant and no X-Tenant-ID header: the default tenant, like /api/v1.
    assert profile["tenant_id"] == "default"
    anonymous = client.get("/user/me")
    assert anonymous.status_code == 401
    assert set(anonymous.json()) == {"detail"}

    refreshed = client.post("/user/login/refresh", json={"old_refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    new_pair = refreshed.json()
    assert list(new_pair) == ["access_token", "token_type", "refresh_token"]
    again_me = client.get("/user/me", headers={"Authorization": f"Bearer {new_pair['access_token']}"})
    assert again_me.json() == profile
    # The seed's "log in again": a spent refresh token is refused (and, past auth's reuse grace,
    # ends the login: tests/integration/backends/auth covers that).
    spent = client.post("/user/login/refresh", json={"old_refresh_token": pair["refresh_token"]})
    assert (spent.status_code, spent.json()) == (401, {"detail": "Invalid token, Please login again"})


def test_x_tenant_id_names_the_tenant_of_register_and_login(client: httpx.Client) -> None:
    tenant = {"X-Tenant-ID": f"s1-{uuid.uuid4().hex[:8]}"}
    username = f"s1{uuid.uuid4().hex[:8]}"
    account = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    assert client.post("/user/register", json=account, headers=tenant).status_code == 201
    credentials = {"username": username, "password": PASSWORD}
    assert client.post("/user/login", json=credentials).status_code == 401  # not in the default tenant
    login = client.post("/user/login", json=credentials, headers=tenant)
    assert login.status_code == 200, login.text
    me = client.get("/user/me", headers={**tenant, "Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.json()["tenant_id"] == tenant["X-Tenant-ID"]
    clash = client.post("/user/login", json={**credentials, "tenant_id": "default"}, headers=tenant)
    assert (clash.status_code, clash.json()) == (400, {"detail": "X-Tenant-ID does not match tenant_id"})


def test_seed_001s_validation_errors_are_per_field_details(client: httpx.Client) -> None:
    bad = client.post("/user/register", json={"username": "x", "email": "not-an-email", "password": PASSWORD})
    assert bad.status_code == 400
    detail = bad.json()["detail"]
    assert {tuple(item["loc"]) for item in detail} >= {("body", "username"), ("body", "email")}
    assert all(item["msg"] and item["type"] == "value_error" for item in detail)
    assert "x-request-id" in bad.headers


def test_the_canonical_routes_keep_the_envelope(client: httpx.Client) -> None:
    missing = client.post("/api/v1/auth/login", json={"username": "nobody-here", "password": PASSWORD})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "UNAUTHORIZED"
    assert client.get("/user/nothing").json()["error"]["code"] == "NOT_FOUND"
