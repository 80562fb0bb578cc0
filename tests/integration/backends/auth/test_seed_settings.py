"""Seed 001's settings on a real users + auth pair: `EXPIRY_TIME` (minutes) is the access-token lifetime,
and `KAFKA_USER_TOPIC` is the topic users publishes to and auth consumes from."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import grpc
import jwt
import pytest

from harness.accounts import PASSWORD
from harness.auth import AuthStack, start_auth_stack, stop_auth_stack
from harness.infra import InfraEnv
from stubs.auth.v1 import auth_pb2
from stubs.users.v1 import users_pb2

pytestmark = pytest.mark.infra


def test_expiry_time_and_the_user_topic_as_seed_001_sets_them(infra: InfraEnv, tmp_path: Path) -> None:
    topic = f"seed-user-events-{uuid.uuid4().hex[:8]}"
    stack = start_auth_stack(infra, tmp_path, {"EXPIRY_TIME": "2", "KAFKA_USER_TOPIC": topic})
    try:
        tenant = f"t-{uuid.uuid4().hex[:10]}"
        registered = stack.register(tenant, "ann", PASSWORD)
        assert registered.expires_in == 120
        claims = jwt.decode(registered.access_token, options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 120

        # A rename reaches auth's login index only through the user events: on the seed's topic.
        channel, users = stack.users()
        with channel:
            users.UpdateUser(
                users_pb2.UpdateUserRequest(user_id=registered.user.id, username="ann2"),
                metadata=(("authorization", f"Bearer {registered.access_token}"),),
                timeout=10,
            )
        assert _login_once_renamed(stack, tenant).expires_in == 120
    finally:
        stop_auth_stack(stack)


def _login_once_renamed(stack: AuthStack, tenant: str) -> auth_pb2.LoginResponse:
    deadline = time.monotonic() + 30
    while True:
        try:
            return stack.login(tenant, "ann2", PASSWORD)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAUTHENTICATED or time.monotonic() > deadline:
                raise  # auth never saw the rename on the seed's topic
            time.sleep(0.3)
