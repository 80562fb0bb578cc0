"""An admin creates a user with a password while auth is SIGKILLed: the call fails UNAVAILABLE and the
profile is taken back (no user who can never log in is left), and once auth is back the same name is
created and logs in.

Own users and auth backends (harness.auth), against the session's Kafka and Redis, which it does not
touch."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import grpc
import pytest

from harness.accounts import PASSWORD
from harness.auth import start_auth_stack, stop_auth_stack
from harness.backends import spawn_backend
from harness.infra import InfraEnv
from stubs.users.v1 import users_pb2

pytestmark = pytest.mark.infra
TIMEOUT = 15.0


def test_a_user_created_with_a_password_while_auth_is_down_is_taken_back(
    infra: InfraEnv, tmp_path: Path
) -> None:
    stack = start_auth_stack(infra, tmp_path)
    try:
        admin = (("authorization", f"Bearer {stack.admin_token()}"),)
        channel, users = stack.users()
        with channel:
            users.GetMe(
                users_pb2.GetMeRequest(), metadata=admin, timeout=TIMEOUT
            )  # users has auth's keys now

            auth = stack.backends["auth"]
            os.killpg(auth.proc.popen.pid, signal.SIGKILL)  # its own session: the group is its pid
            auth.proc.popen.wait(10)
            name = f"down{uuid.uuid4().hex[:8]}"
            request = users_pb2.CreateUserRequest(username=name, password=PASSWORD)
            with pytest.raises(grpc.RpcError) as failed:
                users.CreateUser(request, metadata=admin, timeout=TIMEOUT)
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value.details()

            listed = users.ListUsers(
                users_pb2.ListUsersRequest(page_size=100), metadata=admin, timeout=TIMEOUT
            )
            assert name not in {user.username for user in listed.users}  # taken back

            port = int(auth.target.rsplit(":", 1)[1])
            again = spawn_backend("auth", stack.env, stack.log_dir, port=port, metrics_port=auth.metrics_port)
            stack.backends["auth"] = again
            again.wait_serving()

            created = users.CreateUser(request, metadata=admin, timeout=TIMEOUT)
            assert (created.user.username, created.status) == (name, "created")
        login = stack.login("default", name, PASSWORD)
        assert login.status == "authenticated"
        # The password never reached a log line of either backend.
        assert PASSWORD not in stack.logs()
    finally:
        stop_auth_stack(stack)
