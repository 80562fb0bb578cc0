"""A change of roles ends the user's sessions at once, in the gateway and the backends; other changes do
not — against the real mesh."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import httpx
import jwt
import pytest

from harness.accounts import PASSWORD, bearer, register
from harness.auth import ADMIN_PASSWORD
from harness.mesh import Mesh
from harness.processes import wait_until
from stubs.users.v1 import users_pb2, users_pb2_grpc

pytestmark = pytest.mark.infra
TENANT = "default"  # the bootstrap admin's


def _login(client: httpx.Client, username: str, password: str = PASSWORD) -> dict[str, Any] | None:
    answer = client.post(
        "/api/v1/auth/login", json={"tenant_id": TENANT, "username": username, "password": password}
    )
    return answer.json()["data"] if answer.status_code == 200 else None  # type: ignore[no-any-return]


def _roles(login: dict[str, Any] | None) -> set[str]:
    if login is None:
        return set()
    return set(jwt.decode(login["access_token"], options={"verify_signature": False})["roles"])


def login_with_roles(client: httpx.Client, username: str, roles: set[str]) -> dict[str, Any]:
    """A login whose token carries ``roles``: once auth has consumed the change of roles."""
    found: list[dict[str, Any]] = []

    def logged_in() -> bool:
        login = _login(client, username)
        if _roles(login) != roles:
            return False
        assert login is not None
        found.append(login)
        return True

    wait_until(logged_in, 30, f"a login of {username} with roles {sorted(roles)}")
    return found[-1]


@pytest.fixture
def admin(client: httpx.Client) -> dict[str, str]:
    """The bootstrap admin's Authorization header (auth creates the admin in the background at start)."""
    wait_until(lambda: _login(client, "admin", ADMIN_PASSWORD) is not None, 30, "the bootstrap admin")
    login = _login(client, "admin", ADMIN_PASSWORD)
    assert login is not None
    return bearer(login)


def _set_roles(client: httpx.Client, admin: dict[str, str], user_id: str, roles: list[str]) -> None:
    changed = client.patch(f"/api/v1/users/{user_id}", json={"roles": roles}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["roles"] == roles


def _grpc_me(mesh: Mesh, login: dict[str, Any]) -> grpc.StatusCode:
    with grpc.insecure_channel(mesh.target("users")) as channel:
        try:
            users_pb2_grpc.UserServiceStub(channel).GetMe(
                users_pb2.GetMeRequest(),
                metadata=(("authorization", f"Bearer {login['access_token']}"),),
                timeout=10,
            )
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def _grpc_create_user(mesh: Mesh, login: dict[str, Any]) -> grpc.StatusCode:
    name = f"n{uuid.uuid4().hex[:8]}"
    with grpc.insecure_channel(mesh.target("users")) as channel:
        try:
            users_pb2_grpc.UserServiceStub(channel).CreateUser(
                users_pb2.CreateUserRequest(username=name, email=f"{name}@example.com"),
                metadata=(("authorization", f"Bearer {login['access_token']}"),),
                timeout=10,
            )
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def _create_user(client: httpx.Client, login: dict[str, Any]) -> int:
    name = f"n{uuid.uuid4().hex[:8]}"
    body = {"username": name, "email": f"{name}@example.com"}
    return client.post("/api/v1/users", json=body, headers=bearer(login)).status_code


def test_a_demoted_admin_loses_admin_rights_at_once(
    client: httpx.Client, mesh: Mesh, admin: dict[str, str]
) -> None:
    username = f"dana{uuid.uuid4().hex[:6]}"
    dana = register(client, TENANT, username)["user"]
    _set_roles(client, admin, dana["id"], ["admin", "user"])
    as_admin = login_with_roles(client, username, {"admin", "user"})
    assert _create_user(client, as_admin) == 201
    assert _grpc_create_user(mesh, as_admin) == grpc.StatusCode.OK

    _set_roles(client, admin, dana["id"], ["user"])
    # Her token still says admin: refused at once, at the gateway and by a backend called directly.
    assert _create_user(client, as_admin) == 401
    assert _grpc_create_user(mesh, as_admin) == grpc.StatusCode.UNAUTHENTICATED
    promote = client.patch(
        f"/api/v1/users/{dana['id']}", json={"roles": ["admin", "user"]}, headers=bearer(as_admin)
    )
    assert promote.status_code == 401
    assert promote.json()["error"]["status_code"] == 401  # the contract's envelope

    # Logging in again gives the new roles, and that token works (a whole second after the mark).
    as_user = login_with_roles(client, username, {"user"})
    assert client.get("/api/v1/users/me", headers=bearer(as_user)).status_code == 200
    assert _grpc_me(mesh, as_user) == grpc.StatusCode.OK
    assert _create_user(client, as_user) == 403
    assert client.get(f"/api/v1/users/{dana['id']}", headers=admin).json()["data"]["roles"] == ["user"]


def test_a_change_that_keeps_the_roles_keeps_the_sessions(
    client: httpx.Client, mesh: Mesh, admin: dict[str, str]
) -> None:
    username = f"eli{uuid.uuid4().hex[:6]}"
    registered = register(client, TENANT, username)
    eli = registered["user"]
    same_roles = client.patch(
        f"/api/v1/users/{eli['id']}", json={"roles": eli["roles"], "first_name": "Eli"}, headers=admin
    )
    assert same_roles.status_code == 200, same_roles.text
    renamed = f"{username}x"
    assert (
        client.patch(f"/api/v1/users/{eli['id']}", json={"username": renamed}, headers=admin).status_code
        == 200
    )
    # Auth has consumed both changes (one user's events arrive in order) once the new name logs in.
    wait_until(lambda: _login(client, renamed) is not None, 30, "auth to consume the changes")
    assert client.get("/api/v1/users/me", headers=bearer(registered)).status_code == 200
    assert _grpc_me(mesh, registered) == grpc.StatusCode.OK
