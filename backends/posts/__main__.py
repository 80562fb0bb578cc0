"""``python -m backends.posts``: serve ``posts.v1.PostService`` until SIGTERM."""

from __future__ import annotations

from collections.abc import Sequence

from backends.kit.server import BackendSpec, Runtime, Service, run_backend
from backends.posts.config import PostsSettings
from backends.posts.service import PostService
from stubs.posts.v1 import posts_pb2, posts_pb2_grpc


def services(runtime: Runtime) -> Sequence[Service]:
    # Until its issue lands most RPCs are inherited from the generated base (UNIMPLEMENTED), which the
    # typed stubs declare abstract.
    servicer = PostService()  # type: ignore[abstract]
    return [
        Service.of(
            posts_pb2.DESCRIPTOR,
            "PostService",
            servicer,
            posts_pb2_grpc.add_PostServiceServicer_to_server,
        ),
    ]


if __name__ == "__main__":
    run_backend(BackendSpec("posts", PostsSettings(), services))
