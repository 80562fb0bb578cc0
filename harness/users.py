"""A running users backend for tests, with helpers to mint tokens and create users through its RPCs.

The first admin of a tenant is created with a ``service`` token (what the auth backend holds), so tests
go through exactly the authorization path production uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from harness.backends import BackendProcess, start_backend
from harness.infra import InfraEnv
from harness.tokens import TokenIssuer
from stubs.users.v1 import users_pb2, users_pb2_grpc


@dataclass
class UsersBackend(BackendProcess):
    issuer: TokenIssuer
    database_url: str
    _admins: dict[str, tuple[str, str]] = field(default_factory=dict)

    def metadata(self, token: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token}"),)

    def service_token(self, tenant_id: str = "default") -> str:
        return self.issuer.token("service:auth", tenant_id, ("service",))

    def token(self, user: dict[str, Any]) -> str:
        """An access token for a user dict as returned by :meth:`create_user`."""
        return self.issuer.token(
            user["id"], user["tenant_id"], tuple(user.get("roles", ["user"])), email=user["email"]
        )

    def stub(self) -> tuple[grpc.Channel, users_pb2_grpc.UserServiceStub]:
        channel = grpc.insecure_channel(self.target)
        return channel, users_pb2_grpc.UserServiceStub(channel)

    def create_user(self, token: str, **fields: Any) -> dict[str, Any]:
        """CreateUser with ``token``; returns the user as JSON-like dict (proto field names)."""
        with grpc.insecure_channel(self.target) as channel:
            reply = users_pb2_grpc.UserServiceStub(channel).CreateUser(
                users_pb2.CreateUserRequest(**fields), metadata=self.metadata(token), timeout=10
            )
        return json_format.MessageToDict(
            reply.user, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )

    def admin(self, tenant_id: str) -> tuple[dict[str, Any], str]:
        """The tenant's admin (created once) and a token for it."""
        if tenant_id not in self._admins:
            user = self.create_user(
                self.service_token(tenant_id),
                tenant_id=tenant_id,
                username=f"admin-{tenant_id}"[:32],
                email=f"admin@{tenant_id.lower().replace('_', '-')}.example.com",
                roles=["admin", "user"],
            )
            self._admins[tenant_id] = (user["id"], user["email"])
        user_id, email = self._admins[tenant_id]
        user = {"id": user_id, "tenant_id": tenant_id, "email": email, "roles": ["admin", "user"]}
        return user, self.token(user)


def start_users_backend(
    infra: InfraEnv,
    issuer: TokenIssuer,
    log_dir: Path,
    *,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> UsersBackend:
    url = database_url or f"sqlite+aiosqlite:///{log_dir / 'users.db'}"
    env = {
        **infra.env(),
        "PORTICO_DATABASE_URL": url,
        "PORTICO_JWKS_TARGET": issuer.target,
        **(extra_env or {}),
    }
    started = start_backend("users", env, log_dir)
    return UsersBackend(started.name, started.target, started.metrics_port, started.proc, issuer, url)


def users_backend_fixture(
    infra: InfraEnv, issuer: TokenIssuer, log_dir: Path, database_url: str | None = None
) -> Iterator[UsersBackend]:
    backend = start_users_backend(infra, issuer, log_dir, database_url=database_url)
    yield backend
    backend.stop()
