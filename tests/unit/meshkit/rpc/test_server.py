"""The kit's backend server: it hosts the declared services with health and reflection, drains on stop,
and migrates a backend's database before opening it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import inspect

from backends.users import models as users_models
from backends.users.config import UsersSettings
from meshkit.auth.interceptor import AuthInterceptor
from meshkit.config.serve import BackendSettings
from meshkit.rpc.context import Context
from meshkit.rpc.runtime import Service
from meshkit.rpc.server import BackendServer, database_url, open_database
from tests.unit.meshkit.rpc.test_runtime import make_runtime

SERVICE = "portico.test.Ping"


class PingSettings(BackendSettings):
    port: int = 0  # any free port
    metrics_port: int = 0
    health_interval: float = 0.05


async def ping(request: bytes, context: Context) -> bytes:
    return b"pong:" + request


def ping_service() -> Service:
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Ping": grpc.unary_unary_rpc_method_handler(ping)}
    )
    return Service(SERVICE, lambda server: server.add_generic_rpc_handlers((handler,)))


async def test_the_server_hosts_services_with_health_and_drains_on_stop() -> None:
    runtime = make_runtime(PingSettings())
    drained: list[str] = []

    async def drain() -> None:
        drained.append("streams")

    runtime.on_drain(drain)
    # The method is public, so no token is checked and no verifier is needed.
    authenticator = AuthInterceptor(
        cast(Any, None), runtime.revocations, frozenset({f"/{SERVICE}/Ping"}), runtime.registry
    )
    server = BackendServer(runtime, [ping_service()], authenticator)
    port = await server.start()
    assert port > 0
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert await channel.unary_unary(f"/{SERVICE}/Ping")(b"1") == b"pong:1"
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await server.stop()
    assert drained == ["streams"]


async def test_open_database_migrates_to_head(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"
    migrations = Path(users_models.__file__).with_name("migrations")
    db = await open_database("users", database_url("users", UsersSettings(database_url=url)), migrations, 1)
    try:
        async with db.read() as session:
            names = await session.run_sync(lambda sync: inspect(sync.connection()).get_table_names())
        assert {users_models.outbox.name, users_models.processed_events.name, "users"} <= set(names)
    finally:
        await db.dispose()


def test_a_backend_with_migrations_but_no_database_settings_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="the ping backend names migrations"):
        database_url("ping", PingSettings())
    assert database_url("users", UsersSettings(database_url="sqlite+aiosqlite:///x.db")).endswith("x.db")
