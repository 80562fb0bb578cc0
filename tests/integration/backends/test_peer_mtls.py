"""mTLS on every hop between backends: users, auth and posts each serve mTLS only, and call each other
(and auth's JWKS) with the mesh's client certificate (``PORTICO_PEER_TLS_*``). Real processes, real
handshakes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from harness.auth import start_auth_stack, stop_auth_stack
from harness.backends import health_status, open_sync_channel, spawn_backend
from harness.certs import make_pki
from harness.infra import InfraEnv
from meshkit.rpc.channels import channel_credentials
from stubs.posts.v1 import posts_pb2, posts_pb2_grpc
from stubs.users.v1 import users_pb2

pytestmark = pytest.mark.infra

PASSWORD = "peer-Mtls-pass-42"  # noqa: S105 (a test password)
TIMEOUT = 15


def test_users_and_auth_call_each_other_over_mtls(infra: InfraEnv, tmp_path: Path) -> None:
    ca, server, client = make_pki(tmp_path)
    serve_mtls = {
        f"PORTICO_{name}_{key}": str(path)
        for name in ("USERS", "AUTH", "POSTS")
        for key, path in (
            ("TLS_CERT_FILE", server.cert),
            ("TLS_KEY_FILE", server.key),
            ("TLS_CLIENT_CA_FILE", ca.cert),
        )
    }
    peer_tls = {
        "PORTICO_PEER_TLS_CA_FILE": str(ca.cert),
        "PORTICO_PEER_TLS_CERT_FILE": str(client.cert),
        "PORTICO_PEER_TLS_KEY_FILE": str(client.key),
    }
    credentials = channel_credentials(ca.cert, client.cert, client.key)
    stack = start_auth_stack(infra, tmp_path, serve_mtls | peer_tls, credentials=credentials)
    try:
        # Nobody without a certificate from the CA gets an answer: not plaintext, not TLS alone.
        for target in (stack.users_target, stack.auth_target):
            assert health_status(target) is None
            assert health_status(target, credentials=channel_credentials(ca.cert, None, None)) is None

        # Register: auth creates the user in users (auth → users over mTLS).
        name = f"mtls{uuid.uuid4().hex[:8]}"
        registered = stack.register("default", name, PASSWORD)
        assert registered.user.username == name

        # The admin's token is checked by users with auth's keys (users → auth's GetJwks over mTLS) ...
        admin = (("authorization", f"Bearer {stack.admin_token()}"),)
        created_name = f"mtlsc{uuid.uuid4().hex[:8]}"
        channel, users = stack.users()
        with channel:
            # ... and a user created with a password has it set by auth (users → auth over mTLS).
            created = users.CreateUser(
                users_pb2.CreateUserRequest(username=created_name, password=PASSWORD),
                metadata=admin,
                timeout=TIMEOUT,
            )
        assert (created.user.username, created.status) == (created_name, "created")
        assert stack.login("default", created_name, PASSWORD).status == "authenticated"
        assert stack.login("default", name, PASSWORD).status == "authenticated"

        # A post: posts checks the author with users (posts → users) and the token with auth's keys.
        posts = spawn_backend(
            "posts",
            stack.env
            | {
                "PORTICO_POSTS_BLOB_STORE_URL": str(tmp_path / "blobs"),
                "PORTICO_POSTS_CONSUMER_GROUP": f"portico-posts-{uuid.uuid4().hex[:8]}",
            },
            tmp_path,
        )
        stack.backends["posts"] = posts  # stopped with the stack
        posts.wait_serving(credentials=credentials)
        assert health_status(posts.target) is None
        with open_sync_channel(posts.target, credentials) as channel:
            created_post = posts_pb2_grpc.PostServiceStub(channel).CreatePost(
                posts_pb2.CreatePostRequest(title="over mTLS"),
                metadata=(("authorization", f"Bearer {registered.access_token}"),),
                timeout=TIMEOUT,
            )
        assert created_post.post.author_id == registered.user.id
    finally:
        stop_auth_stack(stack)


def test_a_half_peer_tls_configuration_stops_the_start(infra: InfraEnv, tmp_path: Path) -> None:
    ca, _, client = make_pki(tmp_path)

    env = {
        **infra.env(),
        "PORTICO_DATABASE_URL": "",
        "PORTICO_RUN_DIR": str(tmp_path / "run"),
        "PORTICO_PEER_TLS_CA_FILE": str(ca.cert),
        "PORTICO_PEER_TLS_CERT_FILE": str(client.cert),  # no key
    }
    backend = spawn_backend("users", env, tmp_path)
    try:
        assert backend.proc.popen.wait(60) != 0
    finally:
        backend.stop()
    assert "PORTICO_PEER_TLS_*: mTLS needs both a client certificate and its private key file" in (
        backend.proc.log()
    )
