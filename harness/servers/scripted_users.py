"""A scripted ``users.v1.UserService`` (GetUser only) that records each call, for testing clients.

It is not the users backend: it answers from a fixed dict of users so the example clients' JSON and
error mapping can be checked byte for byte, and it records what each call carried (metadata, the time
left before the deadline). The real backend is exercised by ``tests/integration/examples/test_clients.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc

from stubs.users.v1 import users_pb2, users_pb2_grpc

UNAUTHENTICATED_MESSAGE = "missing or invalid access token"


@dataclass(frozen=True)
class RecordedCall:
    user_id: str
    metadata: dict[str, str]
    time_remaining: float | None


@dataclass
class ScriptedUsers(users_pb2_grpc.UserServiceServicer):
    """GetUser from ``users``; UNAUTHENTICATED unless ``authorization: Bearer <token>``; NOT_FOUND else."""

    users: Mapping[str, users_pb2.User]
    token: str
    calls: list[RecordedCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def GetUser(
        self, request: users_pb2.GetUserRequest, context: grpc.ServicerContext
    ) -> users_pb2.GetUserResponse:
        metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
        with self._lock:
            self.calls.append(RecordedCall(request.user_id, metadata, context.time_remaining()))
        if metadata.get("authorization") != f"Bearer {self.token}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
        user = self.users.get(request.user_id)
        if user is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"user {request.user_id!r} not found")
        return users_pb2.GetUserResponse(user=user)


def scripted_users(users: Mapping[str, users_pb2.User], token: str) -> ScriptedUsers:
    """A ScriptedUsers; the RPCs other than GetUser stay the generated base's UNIMPLEMENTED."""
    return ScriptedUsers(users, token)  # type: ignore[abstract]


@contextmanager
def serve(servicer: ScriptedUsers, workers: int = 8) -> Iterator[str]:
    """Serve ``servicer`` on a free loopback port; yields the target ``127.0.0.1:<port>``."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    users_pb2_grpc.add_UserServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)
