"""The people of an attack: users registered through the gateway (real tokens from the real auth
backend) and tenant admins created the way auth creates users (a ``service`` token to the users backend)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import grpc
import httpx

from harness.accounts import PASSWORD, register
from harness.forgery import Forger
from harness.mesh import Mesh
from stubs.users.v1 import users_pb2, users_pb2_grpc


def fresh_tenant(prefix: str = "sec") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Person:
    user_id: str
    tenant: str
    username: str
    access_token: str
    refresh_token: str = ""

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.access_token)

    def login_body(self, password: str = PASSWORD) -> dict[str, str]:
        return {"tenant_id": self.tenant, "username": self.username, "password": password}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_up(client: httpx.Client, tenant: str | None = None) -> Person:
    """A new user (of a new tenant unless ``tenant``), registered through the gateway."""
    data = register(client, tenant or fresh_tenant())
    user = data["user"]
    return Person(
        user["id"], user["tenant_id"], user["username"], data["access_token"], data["refresh_token"]
    )


def make_admin(mesh: Mesh, forger: Forger, tenant: str) -> Person:
    """An admin of ``tenant``, created through users' CreateUser with auth's service credential; its token
    is the one auth would sign for it (it has no password: admins are not what these tests log in)."""
    username = f"admin-{uuid.uuid4().hex[:8]}"
    with grpc.insecure_channel(mesh.target("users")) as channel:
        reply = users_pb2_grpc.UserServiceStub(channel).CreateUser(
            users_pb2.CreateUserRequest(
                tenant_id=tenant, username=username, email=f"{username}@example.com", roles=["admin", "user"]
            ),
            metadata=(("authorization", f"Bearer {forger.service_token(tenant)}"),),
            timeout=10,
        )
    user = reply.user
    return Person(user.id, tenant, username, forger.access_token(user.id, tenant, user.roles, user.email))
