"""Seed 004 (a user service and an auth service) through the gateway: sign up at `POST /users` with a
username and a password, log in for a `{"token"}`, the users CRUD at `/users` with flat users and a bare
array, and `/logout` ending the token — served by the same RPCs as /api/v1."""

from __future__ import annotations

import uuid

import httpx
import pytest

from harness.accounts import PASSWORD

pytestmark = pytest.mark.infra


def test_signup_with_a_username_and_a_password_then_login_as_seed_004s_client_does(
    client: httpx.Client,
) -> None:
    username = f"s4{uuid.uuid4().hex[:8]}"
    created = client.post("/users", json={"username": username, "password": PASSWORD})
    assert created.status_code == 201, created.text
    assert list(created.json()) == ["id", "username"]
    assert created.json()["username"] == username
    taken = client.post("/users", json={"username": username, "password": PASSWORD})
    assert taken.status_code == 409
    login = client.post("/login", json={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    me = client.get("/user/me", headers={"Authorization": f"Bearer {login.json()['token']}"}).json()
    assert (me["id"], me.get("email", "")) == (created.json()["id"], "")  # no email: it was never asked for


def test_login_users_and_logout_as_seed_004s_client_does(client: httpx.Client) -> None:
    username = f"s4{uuid.uuid4().hex[:8]}"
    account = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    assert client.post("/api/v1/auth/register", json=account).status_code == 201

    login = client.post("/login", json={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert list(login.json()) == ["token"]
    auth = {"Authorization": f"Bearer {login.json()['token']}"}
    wrong = client.post("/login", json={"username": username, "password": "not-the-password"})
    assert wrong.status_code == 401

    listed = client.get("/users", headers=auth)
    assert listed.status_code == 200, listed.text
    assert isinstance(listed.json(), list)
    assert all({"id", "username"} <= set(user) for user in listed.json())
    me = client.get("/user/me", headers=auth).json()
    one = client.get(f"/users/{me['id']}", headers=auth)
    assert one.status_code == 200
    assert {"id": me["id"], "username": username}.items() <= one.json().items()

    renamed = f"{username}x"
    updated = client.put(f"/users/{me['id']}", json={"username": renamed}, headers=auth)
    assert updated.status_code == 200, updated.text
    assert (updated.json()["id"], updated.json()["username"]) == (me["id"], renamed)

    out = client.post("/logout", headers=auth)
    assert (out.status_code, out.json()) == (200, {"status": "logout successful"})
    assert client.get(f"/users/{me['id']}", headers=auth).status_code == 401

    # Logged in again (by email: the rename reaches auth's login index by an event), then deleted.
    again = client.post("/login", json={"email": account["email"], "password": PASSWORD})
    assert again.status_code == 200, again.text
    fresh = {"Authorization": f"Bearer {again.json()['token']}"}
    deleted = client.delete(f"/users/{me['id']}", headers=fresh)
    assert (deleted.status_code, deleted.json()) == (200, {"message": "User deleted successfully"})
    assert client.get("/users", headers=fresh).status_code == 401
