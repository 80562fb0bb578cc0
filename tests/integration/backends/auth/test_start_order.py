"""Start-up order does not matter: when the users backend serves seconds after auth (a busy machine, a
slow migration, a restart), auth's registrations work as soon as users serves — not only once auth's
channel has sat out a reconnect back-off that grew while users was away."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from harness.auth import ADMIN_PASSWORD, AuthStack, stop_auth_stack
from harness.backends import spawn_backend
from harness.infra import InfraEnv
from harness.processes import wait_until
from infra.procs import free_port

pytestmark = pytest.mark.infra

FAILED_ADMIN_ATTEMPTS = 4  # the bootstrap admin's retries while users is away: 0.5 + 1 + 2 + 4 s


def test_registration_works_once_users_serves_after_auth(infra: InfraEnv, tmp_path: Path) -> None:
    users_port, auth_port = free_port(), free_port()
    env = {
        **infra.env(),
        "PORTICO_DATABASE_URL": "",
        "PORTICO_RUN_DIR": str(tmp_path / "run"),
        "PORTICO_USERS_TARGET": f"127.0.0.1:{users_port}",
        "PORTICO_AUTH_TARGET": f"127.0.0.1:{auth_port}",
        "PORTICO_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PORTICO_AUTH_CONSUMER_GROUP": f"portico-auth-{auth_port}",
    }
    auth = spawn_backend("auth", env, tmp_path, port=auth_port)
    stack = AuthStack(auth.target, f"127.0.0.1:{users_port}", {"auth": auth}, env, tmp_path)
    try:
        auth.wait_serving()
        # auth calls users (its bootstrap admin) while users is not there yet, again and again.
        wait_until(
            lambda: auth.proc.log().count("bootstrap admin not ready yet") >= FAILED_ADMIN_ATTEMPTS,
            60,
            "auth's failed calls to the absent users backend",
        )
        users = spawn_backend("users", env, tmp_path, port=users_port)
        stack.backends["users"] = users
        users.wait_serving()
        name = f"late{uuid.uuid4().hex[:8]}"
        reply = stack.register("default", name, "tangerine-Orbit-73")
        assert reply.user.username == name
    finally:
        stop_auth_stack(stack)
