"""A warm GetUser is one Redis round trip from the users backend: the token's revocation marks and the
cache entry in one MGET (meshkit.auth.prefetch), the token verified from the in-process cache, and no read
of the caller's profile. Counted on the real Redis with MONITOR, from the backend's own connections."""

from __future__ import annotations

import uuid
from urllib.parse import urlparse

import jwt
import pytest

from harness.infra import InfraEnv
from harness.redis_monitor import commands_of
from harness.users import UsersBackend
from meshkit.auth.revocation import revoked_jti_key
from stubs.users.v1 import users_pb2

pytestmark = pytest.mark.infra


def test_a_warm_get_user_is_one_redis_round_trip(users_backend: UsersBackend, infra: InfraEnv) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    _, admin_token = users_backend.admin(tenant)
    other = users_backend.create_user(admin_token, email="rt-other@example.com", username="rt-other")
    me = users_backend.create_user(admin_token, email="rt-me@example.com", username="rt-me")
    token = users_backend.token(me)
    channel, stub = users_backend.stub()
    get = users_pb2.GetUserRequest(user_id=other["id"])
    metadata = users_backend.metadata(token)
    with channel:
        for _ in range(2):  # warm: the entry cached, the token verified once
            assert stub.GetUser(get, metadata=metadata, timeout=10).user.id == other["id"]
        redis_port = urlparse(infra.redis_url).port or 6379
        assert users_backend.client_ports(redis_port)  # its pool is connected
        with commands_of(infra.redis_url, lambda: users_backend.client_ports(redis_port)) as commands:
            assert stub.GetUser(get, metadata=metadata, timeout=10).user.id == other["id"]

    assert len(commands) == 1, commands
    (command,) = commands
    claims = jwt.decode(token, options={"verify_signature": False})
    assert command.split()[0].upper() == "MGET"
    assert revoked_jti_key(claims["tenant_id"], claims["jti"]) in command  # the revocation marks ...
    assert f"portico:users:v1:{{{tenant}:{other['id']}}}" in command  # ... and the entry, together
