"""How the users backend is made from the kit: its ``BackendSpec`` (run by ``python -m backends.users``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from backends.users import models
from backends.users.cache import UserCache
from backends.users.config import UsersSettings
from backends.users.credentials import Credentials
from backends.users.service import PREFETCH, UsersDeps, UserService
from backends.users.store import UserStore
from meshkit.rpc.runtime import BackendSpec, Runtime, Service, open_outbox
from stubs.auth.v1 import auth_pb2_grpc
from stubs.users.v1 import users_pb2, users_pb2_grpc

MIGRATIONS = Path(__file__).with_name("migrations")


def users_deps(runtime: Runtime[UsersSettings]) -> UsersDeps:
    """What the servicer works with, opened on the runtime's shared resources."""
    db = runtime.database
    return UsersDeps(
        db=db,
        store=UserStore(db.dialect),
        cache=UserCache(runtime.redis, runtime.registry),
        outbox=open_outbox(runtime, models.outbox),
        redis=runtime.redis,
        revocations=runtime.revocations.local,
        users_topic=runtime.settings.users_topic,
        credentials=Credentials(
            auth_pb2_grpc.AuthServiceStub(runtime.channel(runtime.settings.auth_target)),
            runtime.settings.forwarding_secret,
        ),
    )


def services(runtime: Runtime[UsersSettings]) -> Sequence[Service]:
    servicer = UserService(users_deps(runtime))
    return [
        Service.of(
            users_pb2.DESCRIPTOR,
            "UserService",
            servicer,
            users_pb2_grpc.add_UserServiceServicer_to_server,
            prefetch=PREFETCH,
        )
    ]


SPEC = BackendSpec("users", UsersSettings, services, migrations=MIGRATIONS)
