"""gRPC handlers of ``posts.v1.PostService``.

The RPCs are specified in ``proto/posts/v1/posts.proto``; the ones not written yet are inherited from
the generated base class, which answers ``UNIMPLEMENTED``.
"""

from __future__ import annotations

from stubs.posts.v1 import posts_pb2_grpc


class PostService(posts_pb2_grpc.PostServiceServicer):
    """The posts backend's servicer."""
