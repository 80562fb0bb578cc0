"""``python -m backends.broker``: serve ``broker.v1.MessageService`` until SIGTERM."""

from __future__ import annotations

from collections.abc import Sequence

from backends.broker.config import BrokerSettings
from backends.broker.service import MessageService
from backends.kit.server import BackendSpec, Runtime, Service, run_backend
from stubs.broker.v1 import broker_pb2, broker_pb2_grpc


def services(runtime: Runtime) -> Sequence[Service]:
    # Until its issue lands most RPCs are inherited from the generated base (UNIMPLEMENTED), which the
    # typed stubs declare abstract.
    servicer = MessageService()  # type: ignore[abstract]
    return [
        Service.of(
            broker_pb2.DESCRIPTOR,
            "MessageService",
            servicer,
            broker_pb2_grpc.add_MessageServiceServicer_to_server,
        ),
    ]


if __name__ == "__main__":
    run_backend(BackendSpec("broker", BrokerSettings(), services))
