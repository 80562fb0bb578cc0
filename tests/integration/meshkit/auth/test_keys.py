"""The key set a backend fetched from the real auth backend is kept beside its run directory, and a backend
that starts while auth is unreachable verifies tokens with it; without one it answers UNAVAILABLE, never
UNAUTHENTICATED."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from harness.auth import AuthStack, auth_stack_fixture
from harness.backends import BackendProcess, start_backend
from harness.infra import InfraEnv
from infra.procs import free_port
from stubs.users.v1 import users_pb2, users_pb2_grpc

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def stack(infra: InfraEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthStack]:
    yield from auth_stack_fixture(infra, tmp_path_factory.mktemp("kept-keys"))


def _get_me(target: str, token: str) -> users_pb2.GetMeResponse:
    with grpc.insecure_channel(target) as channel:
        return users_pb2_grpc.UserServiceStub(channel).GetMe(
            users_pb2.GetMeRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=15
        )


def _users_without_auth(stack: AuthStack, run_dir: Path, log_dir: Path) -> BackendProcess:
    """Another users backend whose JWKS target is a port nothing listens on (auth unreachable)."""
    env = {**stack.env, "PORTICO_RUN_DIR": str(run_dir), "PORTICO_JWKS_TARGET": f"127.0.0.1:{free_port()}"}
    return start_backend("users", env, log_dir, port=free_port())


def test_the_fetched_set_is_kept_with_public_keys_only(stack: AuthStack) -> None:
    registered = stack.register("kept", "keeper", "copper-Lantern-58")
    assert _get_me(stack.users_target, registered.access_token).user.username == "keeper"
    kept = json.loads((Path(stack.env["PORTICO_RUN_DIR"]) / "jwks" / "users.json").read_text())
    assert kept["keys"], kept
    assert all(set(jwk) <= {"kty", "crv", "x", "y", "kid", "alg", "use"} for jwk in kept["keys"])


def test_a_backend_started_while_auth_is_unreachable_uses_the_kept_set(
    stack: AuthStack, tmp_path: Path
) -> None:
    registered = stack.register("kept", "restarter", "copper-Lantern-58")
    _get_me(stack.users_target, registered.access_token)  # the stack's users backend keeps the set
    # Restarted: the same run directory (its kept set and its SQLite database, which serves one process
    # at a time), while auth is unreachable. The stack's own users backend comes back afterwards.
    before = stack.backends["users"]
    before.stop()
    try:
        users = _users_without_auth(stack, Path(stack.env["PORTICO_RUN_DIR"]), tmp_path)
        try:
            assert _get_me(users.target, registered.access_token).user.username == "restarter"
        finally:
            users.stop()
    finally:
        port = int(before.target.rsplit(":", 1)[1])
        stack.backends["users"] = start_backend("users", stack.env, stack.log_dir, port=port)


def test_a_backend_with_no_kept_set_answers_unavailable_not_unauthenticated(
    stack: AuthStack, tmp_path: Path
) -> None:
    registered = stack.register("kept", "newcomer", "copper-Lantern-58")
    users = _users_without_auth(stack, tmp_path / "empty-run", tmp_path)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            _get_me(users.target, registered.access_token)
    finally:
        users.stop()
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
