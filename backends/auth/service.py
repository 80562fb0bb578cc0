"""gRPC handlers of ``auth.v1.AuthService``.

The RPCs are specified in ``proto/auth/v1/auth.proto``; the ones not written yet are inherited from
the generated base class, which answers ``UNIMPLEMENTED``.
"""

from __future__ import annotations

from stubs.auth.v1 import auth_pb2_grpc


class AuthService(auth_pb2_grpc.AuthServiceServicer):
    """The auth backend's servicer."""
