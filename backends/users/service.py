"""gRPC handlers of ``users.v1.UserService``.

The RPCs are specified in ``proto/users/v1/users.proto``; the ones not written yet are inherited from
the generated base class, which answers ``UNIMPLEMENTED``.
"""

from __future__ import annotations

from stubs.users.v1 import users_pb2_grpc


class UserService(users_pb2_grpc.UserServiceServicer):
    """The users backend's servicer."""
