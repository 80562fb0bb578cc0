"""gRPC handlers of ``broker.v1.MessageService``.

The RPCs are specified in ``proto/broker/v1/broker.proto``; the ones not written yet are inherited from
the generated base class, which answers ``UNIMPLEMENTED``.
"""

from __future__ import annotations

from stubs.broker.v1 import broker_pb2_grpc


class MessageService(broker_pb2_grpc.MessageServiceServicer):
    """The broker backend's servicer."""
