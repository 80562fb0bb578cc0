"""``python -m backends.users``: serve ``users.v1.UserService`` until SIGTERM."""

from __future__ import annotations

from collections.abc import Sequence

from backends.kit.server import BackendSpec, Runtime, Service, run_backend
from backends.users.config import UsersSettings
from backends.users.service import UserService
from stubs.users.v1 import users_pb2, users_pb2_grpc


def services(runtime: Runtime) -> Sequence[Service]:
    # Until its issue lands most RPCs are inherited from the generated base (UNIMPLEMENTED), which the
    # typed stubs declare abstract.
    servicer = UserService()  # type: ignore[abstract]
    return [
        Service.of(
            users_pb2.DESCRIPTOR,
            "UserService",
            servicer,
            users_pb2_grpc.add_UserServiceServicer_to_server,
        ),
    ]


if __name__ == "__main__":
    run_backend(BackendSpec("users", UsersSettings(), services))
