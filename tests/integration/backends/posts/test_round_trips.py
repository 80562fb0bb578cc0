"""Posts' reads are one Redis round trip each from the posts backend: the token's revocation marks in one
MGET (the token verified from the in-process cache, nothing else asked of Redis; the posts themselves come
from the database). Counted on the real Redis with MONITOR, from the backend's own connections."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlparse

import jwt
import pytest

from harness.images import image_bytes
from harness.infra import InfraEnv
from harness.posts import PostsBackend
from harness.redis_monitor import commands_of
from meshkit.auth.revocation import revoked_jti_key
from stubs.posts.v1 import posts_pb2

pytestmark = pytest.mark.infra


def test_warm_reads_are_one_redis_round_trip_each(posts_backend: PostsBackend, infra: InfraEnv) -> None:
    users = posts_backend.users
    _, admin_token = users.admin(f"t-{uuid.uuid4().hex[:12]}")
    author = users.create_user(admin_token, email="rt-author@example.com", username="rt-author")
    token = users.token(author)
    post = posts_backend.create(token, title="Round trips", image=image_bytes())
    reads: list[tuple[str, Any]] = [
        ("GetPost", posts_pb2.GetPostRequest(post_id=post.id)),
        ("ListPosts", posts_pb2.ListPostsRequest()),
        ("ListPosts", posts_pb2.ListPostsRequest(author_id=author["id"], page_size=5)),
        ("GetPostImage", posts_pb2.GetPostImageRequest(post_id=post.id)),
    ]
    for method, request in reads:  # warm: the token verified once, the Redis pool connected
        posts_backend.call(method, request, token)
    redis_port = urlparse(infra.redis_url).port or 6379
    assert posts_backend.client_ports(redis_port)
    claims = jwt.decode(token, options={"verify_signature": False})

    for method, request in reads:
        with commands_of(infra.redis_url, lambda: posts_backend.client_ports(redis_port)) as commands:
            posts_backend.call(method, request, token)
        assert len(commands) == 1, (method, commands)
        (command,) = commands
        assert command.split()[0].upper() == "MGET", (method, command)
        assert revoked_jti_key(claims["tenant_id"], claims["jti"]) in command
