"""``python -m backends.users``: serve ``users.v1.UserService`` until SIGTERM."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import MetaData

from backends.users.cache import UserCache
from backends.users.config import UsersSettings
from backends.users.service import UserService
from backends.users.store import UserStore
from meshkit.events.tables import outbox_table
from meshkit.rpc.server import BackendSpec, Runtime, Service, run_backend
from stubs.users.v1 import users_pb2, users_pb2_grpc

MIGRATIONS = Path(__file__).with_name("migrations")


def services(runtime: Runtime) -> Sequence[Service]:
    assert runtime.db is not None
    outbox = runtime.outbox(outbox_table(MetaData(), "users"))
    servicer = UserService(
        runtime.db,
        UserStore(runtime.db.dialect),
        UserCache(runtime.redis, runtime.registry),
        outbox,
        runtime.redis,
    )
    return [
        Service.of(
            users_pb2.DESCRIPTOR, "UserService", servicer, users_pb2_grpc.add_UserServiceServicer_to_server
        )
    ]


if __name__ == "__main__":
    run_backend(BackendSpec("users", UsersSettings(), services, migrations=MIGRATIONS))
