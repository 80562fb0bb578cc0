"""The users and auth backends together, every token verified against the real auth backend's keys."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from harness.backends import BackendProcess, open_sync_channel, spawn_backend
from harness.infra import InfraEnv
from infra.procs import free_port, wait_until
from meshkit.rpc.forwarding import FORWARDER_KEY
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc
from stubs.users.v1 import users_pb2_grpc

ADMIN_PASSWORD = "bootstrap-Admin-pass-42"  # noqa: S105 (a test password)


@dataclass
class AuthStack:
    auth_target: str
    users_target: str
    backends: dict[str, BackendProcess]
    env: dict[str, str]  # what both were started with (to restart one of them)
    log_dir: Path
    credentials: grpc.ChannelCredentials | None = None  # the tests' client TLS when both serve TLS

    def auth(self) -> tuple[grpc.Channel, auth_pb2_grpc.AuthServiceStub]:
        channel = open_sync_channel(self.auth_target, self.credentials)
        return channel, auth_pb2_grpc.AuthServiceStub(channel)

    def users(self) -> tuple[grpc.Channel, users_pb2_grpc.UserServiceStub]:
        channel = open_sync_channel(self.users_target, self.credentials)
        return channel, users_pb2_grpc.UserServiceStub(channel)

    def register(self, tenant: str, username: str, password: str, **fields: Any) -> auth_pb2.RegisterResponse:
        channel, stub = self.auth()
        with channel:
            email = fields.pop("email", f"{username}@example.com")
            return stub.Register(
                auth_pb2.RegisterRequest(
                    tenant_id=tenant, username=username, email=email, password=password, **fields
                ),
                timeout=15,
            )

    def login(self, tenant: str, identifier: str, password: str, **metadata: str) -> auth_pb2.LoginResponse:
        channel, stub = self.auth()
        with channel:
            return stub.Login(
                auth_pb2.LoginRequest(tenant_id=tenant, username=identifier, password=password),
                metadata=tuple(metadata.items()),
                timeout=15,
            )

    def admin_token(self, timeout: float = 60) -> str:
        """The bootstrap admin's access token (tenant ``default``), once auth has created the admin: it
        does so in the background after it starts serving."""
        tokens: list[str] = []

        def logged_in() -> bool:
            try:
                tokens.append(self.login("default", "admin", ADMIN_PASSWORD).access_token)
            except grpc.RpcError:
                return False
            return True

        wait_until(logged_in, timeout=timeout, what="the bootstrap admin")
        return tokens[-1]

    def as_gateway(self, client_ip: str) -> dict[str, str]:
        """The metadata the gateway adds to a call from ``client_ip``: believed, as it carries the
        mesh's forwarding secret."""
        return {"x-client-ip": client_ip, FORWARDER_KEY: self.env["PORTICO_FORWARDING_SECRET"]}

    def logs(self) -> str:
        return "\n".join(backend.proc.log() for backend in self.backends.values())


def start_auth_stack(
    infra: InfraEnv,
    log_dir: Path,
    extra_env: dict[str, str] | None = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> AuthStack:
    """users and auth calling each other; ``credentials`` are the tests' client TLS when ``extra_env``
    makes them serve TLS."""
    users_port, auth_port = free_port(), free_port()
    env = {
        **infra.env(),
        "PORTICO_DATABASE_URL": "",  # each backend its own SQLite file under the run dir
        "PORTICO_RUN_DIR": str(log_dir / "run"),
        "PORTICO_USERS_TARGET": f"127.0.0.1:{users_port}",
        "PORTICO_AUTH_TARGET": f"127.0.0.1:{auth_port}",
        "PORTICO_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        # Other auth backends of the test session (the mesh's) consume the same topic: a group of its
        # own, or they would share its partitions and apply some of its events to their database.
        "PORTICO_AUTH_CONSUMER_GROUP": f"portico-auth-{auth_port}",
        "PORTICO_LOG_LEVEL": "DEBUG",  # the secret-leak test reads everything the backends say
        "PORTICO_FORWARDING_SECRET": secrets.token_urlsafe(32),
        **(extra_env or {}),
    }
    users = spawn_backend("users", env, log_dir, port=users_port)
    auth = spawn_backend("auth", env, log_dir, port=auth_port)
    stack = AuthStack(auth.target, users.target, {"users": users, "auth": auth}, env, log_dir, credentials)
    try:
        for backend in (auth, users):
            backend.wait_serving(credentials=credentials)
    except BaseException:
        stop_auth_stack(stack)
        print(stack.logs()[-6000:])
        raise
    return stack


def stop_auth_stack(stack: AuthStack) -> None:
    for backend in stack.backends.values():
        backend.stop()


def auth_stack_fixture(
    infra: InfraEnv, log_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[AuthStack]:
    stack = start_auth_stack(infra, log_dir, extra_env)
    yield stack
    stop_auth_stack(stack)
