"""``python -m backends.auth``: serve ``auth.v1.AuthService`` until SIGTERM."""

from __future__ import annotations

from collections.abc import Sequence

from backends.auth.config import AuthSettings
from backends.auth.service import AuthService
from backends.kit.server import BackendSpec, Runtime, Service, run_backend
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc


def services(runtime: Runtime) -> Sequence[Service]:
    # Until its issue lands most RPCs are inherited from the generated base (UNIMPLEMENTED), which the
    # typed stubs declare abstract.
    servicer = AuthService()  # type: ignore[abstract]
    return [
        Service.of(
            auth_pb2.DESCRIPTOR, "AuthService", servicer, auth_pb2_grpc.add_AuthServiceServicer_to_server
        ),
    ]


if __name__ == "__main__":
    run_backend(BackendSpec("auth", AuthSettings(), services))
