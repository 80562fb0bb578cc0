"""A running posts backend for tests: real process against the session's Kafka, Redis and users backend,
tokens from the test issuer, images kept in a directory the test can inspect."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from harness.backends import BackendProcess, start_backend
from harness.infra import InfraEnv
from harness.users import UsersBackend
from meshkit.config.defaults import GRPC_MAX_MESSAGE_BYTES
from stubs.posts.v1 import posts_pb2, posts_pb2_grpc

# Images pass gRPC's default 4 MiB; the client allows more than the backend accepts, so that what refuses
# an oversized message in a test is the backend's own limit.
_LARGE_MESSAGES = [
    ("grpc.max_send_message_length", 2 * GRPC_MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", 2 * GRPC_MAX_MESSAGE_BYTES),
]


@dataclass
class PostsBackend(BackendProcess):
    blob_dir: Path
    users: UsersBackend
    consumer_group: str

    def stub(self) -> tuple[grpc.Channel, posts_pb2_grpc.PostServiceStub]:
        channel = grpc.insecure_channel(self.target)
        return channel, posts_pb2_grpc.PostServiceStub(channel)

    def call(self, method: str, request: Any, token: str | None, timeout: float = 20) -> Any:
        """``PostService/<method>`` with ``token`` (none when None)."""
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        with grpc.insecure_channel(self.target, options=_LARGE_MESSAGES) as channel:
            return getattr(posts_pb2_grpc.PostServiceStub(channel), method)(
                request, metadata=metadata, timeout=timeout
            )

    def create(self, token: str, title: str = "Hello", content: str = "", **fields: Any) -> posts_pb2.Post:
        request = posts_pb2.CreatePostRequest(title=title, content=content, **fields)
        return self.call("CreatePost", request, token).post  # type: ignore[no-any-return]

    def blobs(self) -> list[Path]:
        """The image files in the store, temporary files of a write included."""
        return sorted(p for p in self.blob_dir.rglob("*") if p.is_file())


def start_posts_backend(
    infra: InfraEnv,
    users: UsersBackend,
    log_dir: Path,
    *,
    database_url: str | None = None,
    blob_store_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> PostsBackend:
    blob_dir = log_dir / "blobs"
    group = f"portico-posts-{uuid.uuid4().hex[:8]}"
    env = {
        **infra.env(),
        "PORTICO_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{log_dir / 'posts.db'}",
        "PORTICO_JWKS_TARGET": users.issuer.target,
        "PORTICO_USERS_TARGET": users.target,
        "PORTICO_POSTS_BLOB_STORE_URL": blob_store_url or str(blob_dir),
        # A group of its own: the mesh's posts backend consumes the same topic in the session.
        "PORTICO_POSTS_CONSUMER_GROUP": group,
        **(extra_env or {}),
    }
    started = start_backend("posts", env, log_dir)
    return PostsBackend(
        started.name, started.target, started.metrics_port, started.proc, blob_dir, users, group
    )


def posts_backend_fixture(infra: InfraEnv, users: UsersBackend, log_dir: Path) -> Iterator[PostsBackend]:
    backend = start_posts_backend(infra, users, log_dir)
    yield backend
    backend.stop()
