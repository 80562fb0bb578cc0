"""Passwords of created users, change and admin reset — the auth and users backends together, against the
real Redis and Kafka: who may, which logins end, what the next login says, and that nothing is left
half-done when the peer is away."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from harness.auth import AuthStack, auth_stack_fixture
from harness.backends import SERVING, spawn_backend
from harness.infra import InfraEnv
from harness.kafka import read_topic
from harness.processes import wait_until
from meshkit.rpc.status import violations_of
from stubs.auth.v1 import auth_pb2
from stubs.users.v1 import users_pb2

pytestmark = pytest.mark.infra
Code = grpc.StatusCode
PASSWORD = "tangerine-Orbit-73"  # noqa: S105 (test passwords)
NEW_PASSWORD = "lantern-Quartz-19"  # noqa: S105
RESET_PASSWORD = "harbour-Violet-58"  # noqa: S105


@pytest.fixture(scope="module")
def stack(infra: InfraEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthStack]:
    yield from auth_stack_fixture(
        infra,
        Path(tmp_path_factory.mktemp("passwords")),
        {
            "PORTICO_AUTH_LOGIN_ACCOUNT_LIMIT": "3",
            "PORTICO_AUTH_LOGIN_LOCKOUT_SECONDS": "2",
            # Every test's calls come from 127.0.0.1, whose failures the session's Redis counts for every
            # auth backend: the account lockout is what these tests look at, not that shared IP budget.
            "PORTICO_AUTH_LOGIN_IP_LIMIT": "100000",
        },
    )


@pytest.fixture(scope="module")
def admin(stack: AuthStack) -> str:
    """The bootstrap admin's access token (tenant ``default``)."""
    return stack.admin_token()


@pytest.fixture
def name() -> str:
    return f"u{uuid.uuid4().hex[:12]}"


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def rpc_error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def create_user(stack: AuthStack, token: str, **fields: Any) -> users_pb2.User:
    channel, users = stack.users()
    with channel:
        reply = users.CreateUser(users_pb2.CreateUserRequest(**fields), metadata=bearer(token), timeout=15)
    return reply.user  # type: ignore[no-any-return]


def me(stack: AuthStack, token: str) -> users_pb2.User:
    channel, users = stack.users()
    with channel:
        return users.GetMe(users_pb2.GetMeRequest(), metadata=bearer(token), timeout=10).user  # type: ignore[no-any-return]


def change(stack: AuthStack, token: str, old: str, new: str) -> auth_pb2.ChangePasswordResponse:
    channel, auth = stack.auth()
    with channel:
        return auth.ChangePassword(  # type: ignore[no-any-return]
            auth_pb2.ChangePasswordRequest(old_password=old, new_password=new),
            metadata=bearer(token),
            timeout=15,
        )


def reset(stack: AuthStack, token: str, user_id: str, new: str) -> auth_pb2.ResetPasswordResponse:
    channel, auth = stack.auth()
    with channel:
        return auth.ResetPassword(  # type: ignore[no-any-return]
            auth_pb2.ResetPasswordRequest(user_id=user_id, new_password=new),
            metadata=bearer(token),
            timeout=15,
        )


def refresh(stack: AuthStack, token: str) -> auth_pb2.RefreshResponse:
    channel, auth = stack.auth()
    with channel:
        return auth.Refresh(auth_pb2.RefreshRequest(refresh_token=token), timeout=10)  # type: ignore[no-any-return]


def test_a_user_created_with_a_password_logs_in(stack: AuthStack, admin: str, name: str) -> None:
    user = create_user(stack, admin, username=name, email=f"{name}@example.com", password=PASSWORD)
    login = stack.login("default", name, PASSWORD)
    assert not login.password_change_required
    assert me(stack, login.access_token).id == user.id
    assert stack.login("default", f"{name}@example.com", PASSWORD).access_token  # by email too
    # Without a password the profile is created as before, and cannot log in.
    bare = f"{name}b"
    create_user(stack, admin, username=bare, email=f"{bare}@example.com")
    assert rpc_error(lambda: stack.login("default", bare, PASSWORD)).code() == Code.UNAUTHENTICATED


def test_email_is_optional_with_a_username_and_claims_no_uniqueness(
    stack: AuthStack, admin: str, name: str
) -> None:
    first = create_user(stack, admin, username=name, password=PASSWORD)
    second = create_user(stack, admin, username=f"{name}2", password=PASSWORD)
    assert (first.email, second.email) == ("", "")
    assert stack.login("default", name, PASSWORD).access_token
    assert stack.login("default", f"{name}2", PASSWORD).access_token
    # An empty email names nobody: a login "by email" with none is refused as a bad request.
    channel, auth = stack.auth()
    with channel:
        blank = rpc_error(
            lambda: auth.Login(auth_pb2.LoginRequest(tenant_id="default", password=PASSWORD), timeout=10)
        )
    assert blank.code() == Code.INVALID_ARGUMENT
    # Neither username nor email: refused, on the field a client would fill in.
    neither = rpc_error(lambda: create_user(stack, admin, first_name="Nobody"))
    assert neither.code() == Code.INVALID_ARGUMENT
    assert [field for field, _ in violations_of(neither)] == ["email"]


def test_a_password_the_policy_refuses_leaves_no_profile(stack: AuthStack, admin: str, name: str) -> None:
    for password, reason in (("short", "length"), ("password123", "common"), (name, "username")):
        weak = rpc_error(lambda p=password: create_user(stack, admin, username=name, password=p))
        assert weak.code() == Code.INVALID_ARGUMENT, reason
        assert [field for field, _ in violations_of(weak)] == ["password"], reason
    # Each refusal took its profile back: the username is free.
    assert create_user(stack, admin, username=name, password=PASSWORD).username == name


def test_only_an_admin_creates_users_and_credentials(stack: AuthStack, admin: str, name: str) -> None:
    user = stack.register("default", name, PASSWORD)
    denied = rpc_error(lambda: create_user(stack, user.access_token, username=f"{name}x", password=PASSWORD))
    assert denied.code() == Code.PERMISSION_DENIED
    channel, auth = stack.auth()
    with channel:
        direct = rpc_error(
            lambda: auth.CreateCredential(
                auth_pb2.CreateCredentialRequest(user_id=user.user.id, password=NEW_PASSWORD),
                metadata=bearer(user.access_token),
                timeout=10,
            )
        )
        assert direct.code() == Code.PERMISSION_DENIED
        # An admin cannot give a second credential to a user who has one.
        again = rpc_error(
            lambda: auth.CreateCredential(
                auth_pb2.CreateCredentialRequest(user_id=user.user.id, password=NEW_PASSWORD),
                metadata=bearer(admin),
                timeout=10,
            )
        )
        assert again.code() == Code.ALREADY_EXISTS
    assert stack.login("default", name, PASSWORD).access_token


def test_change_password_ends_every_other_login_and_keeps_the_callers(stack: AuthStack, name: str) -> None:
    current = stack.register("default", name, PASSWORD)
    other = stack.login("default", name, PASSWORD)
    assert change(stack, current.access_token, PASSWORD, NEW_PASSWORD).status == "password changed"
    # The other login: its access token and its refresh token stop at once.
    assert rpc_error(lambda: me(stack, other.access_token)).code() == Code.UNAUTHENTICATED
    assert rpc_error(lambda: refresh(stack, other.refresh_token)).code() == Code.UNAUTHENTICATED
    # The caller's own goes on.
    assert me(stack, current.access_token).username == name
    assert refresh(stack, current.refresh_token).access_token
    assert rpc_error(lambda: stack.login("default", name, PASSWORD)).code() == Code.UNAUTHENTICATED
    assert stack.login("default", name, NEW_PASSWORD).access_token


def test_change_password_checks_the_old_one_under_the_login_lockout(stack: AuthStack, name: str) -> None:
    login = stack.register("default", name, PASSWORD)
    for _ in range(3):  # PORTICO_AUTH_LOGIN_ACCOUNT_LIMIT
        wrong = rpc_error(lambda: change(stack, login.access_token, "not-the-password", NEW_PASSWORD))
        assert (wrong.code(), wrong.details()) == (Code.UNAUTHENTICATED, "Invalid password")
    # Counted like failed logins: the account is locked, for logins too, even with the right password.
    assert rpc_error(lambda: stack.login("default", name, PASSWORD)).code() == Code.UNAUTHENTICATED
    locked = rpc_error(lambda: change(stack, login.access_token, PASSWORD, NEW_PASSWORD))
    assert locked.code() == Code.UNAUTHENTICATED
    wait_until(lambda: _logs_in(stack, name, PASSWORD), 15, "the lockout to expire")
    # The policy of register applies to the new password.
    for new, field in ((name, "new_password"), ("password123", "new_password"), (PASSWORD, "new_password")):
        weak = rpc_error(lambda n=new: change(stack, login.access_token, PASSWORD, n))
        assert weak.code() == Code.INVALID_ARGUMENT
        assert [f for f, _ in violations_of(weak)] == [field]
    assert me(stack, login.access_token).username == name  # nothing ended by the refusals


def _logs_in(stack: AuthStack, name: str, password: str) -> bool:
    try:
        return bool(stack.login("default", name, password).access_token)
    except grpc.RpcError:
        return False


def test_admin_reset_ends_every_login_and_requires_a_change(stack: AuthStack, admin: str, name: str) -> None:
    user = stack.register("default", name, PASSWORD)
    assert reset(stack, admin, user.user.id, RESET_PASSWORD).status == "password reset"
    assert rpc_error(lambda: me(stack, user.access_token)).code() == Code.UNAUTHENTICATED
    assert rpc_error(lambda: refresh(stack, user.refresh_token)).code() == Code.UNAUTHENTICATED
    assert rpc_error(lambda: stack.login("default", name, PASSWORD)).code() == Code.UNAUTHENTICATED
    # Logs in with the flag, and the token works (the client must have the user change the password).
    flagged = stack.login("default", name, RESET_PASSWORD)
    assert flagged.password_change_required
    assert me(stack, flagged.access_token).id == user.user.id
    assert stack.login("default", name, RESET_PASSWORD).password_change_required  # until changed
    change(stack, flagged.access_token, RESET_PASSWORD, NEW_PASSWORD)
    assert not stack.login("default", name, NEW_PASSWORD).password_change_required


def test_reset_is_for_admins_of_the_users_tenant(stack: AuthStack, admin: str, name: str) -> None:
    user = stack.register("default", name, PASSWORD)
    outsider = stack.register(f"t-{uuid.uuid4().hex[:10]}", name, PASSWORD)
    own = rpc_error(lambda: reset(stack, user.access_token, user.user.id, RESET_PASSWORD))
    assert own.code() == Code.PERMISSION_DENIED
    # Another tenant's user is not found, as an unknown one.
    assert rpc_error(lambda: reset(stack, admin, outsider.user.id, RESET_PASSWORD)).code() == Code.NOT_FOUND
    assert rpc_error(lambda: reset(stack, admin, str(uuid.uuid4()), RESET_PASSWORD)).code() == Code.NOT_FOUND
    weak = rpc_error(lambda: reset(stack, admin, user.user.id, "password123"))
    assert [f for f, _ in violations_of(weak)] == ["new_password"]
    assert stack.login("default", name, PASSWORD).access_token  # none of these changed anything


def test_reset_gives_a_password_to_a_user_created_without_one(
    stack: AuthStack, admin: str, name: str
) -> None:
    user = create_user(stack, admin, username=name)
    reset(stack, admin, user.id, RESET_PASSWORD)
    assert stack.login("default", name, RESET_PASSWORD).password_change_required


def test_create_user_with_a_password_fails_whole_while_auth_is_down(
    stack: AuthStack, admin: str, name: str
) -> None:
    auth = stack.backends["auth"]
    port = int(auth.target.rsplit(":", 1)[1])
    auth.stop()
    try:
        down = rpc_error(lambda: create_user(stack, admin, username=name, password=PASSWORD))
        assert (down.code(), down.details()) == (Code.UNAVAILABLE, "The auth service is unavailable")
    finally:
        again = spawn_backend("auth", stack.env, stack.log_dir, port=port)
        stack.backends["auth"] = again
        wait_until(lambda: again.health() == SERVING, 90, "auth SERVING again")
    # No half-created account: the username is free, and the user created now logs in.
    wait_until(lambda: _created(stack, admin, name), 30, "a create once auth is back")
    assert stack.login("default", name, PASSWORD).access_token


def _created(stack: AuthStack, admin: str, name: str) -> bool:
    try:
        return create_user(stack, admin, username=name, password=PASSWORD).username == name
    except grpc.RpcError as exc:
        if exc.code() != Code.UNAVAILABLE:  # the only answer expected until users' channel reconnects
            raise
        return False


def test_reset_answers_unavailable_while_users_is_down(stack: AuthStack, admin: str, name: str) -> None:
    user = stack.register("default", name, PASSWORD)
    users = stack.backends["users"]
    port = int(users.target.rsplit(":", 1)[1])
    users.stop()
    try:
        down = rpc_error(lambda: reset(stack, admin, user.user.id, RESET_PASSWORD))
        assert down.code() == Code.UNAVAILABLE
    finally:
        again = spawn_backend("users", stack.env, stack.log_dir, port=port)
        stack.backends["users"] = again
        wait_until(lambda: again.health() == SERVING, 90, "users SERVING again")
    # Nothing was reset: the old password works, without the flag.
    wait_until(lambda: _logs_in(stack, name, PASSWORD), 30, "a login once users is back")
    assert not stack.login("default", name, PASSWORD).password_change_required


def test_no_password_in_any_log_line_or_event(
    stack: AuthStack, admin: str, name: str, infra: InfraEnv
) -> None:
    created, changed, reset_to = (f"Secret-{uuid.uuid4().hex}" for _ in range(3))
    user = create_user(stack, admin, username=name, password=created)
    login = stack.login("default", name, created)
    rpc_error(lambda: change(stack, login.access_token, created + "x", changed))
    change(stack, login.access_token, created, changed)
    reset(stack, admin, user.id, reset_to)
    events = asyncio.run(
        read_topic(
            infra.kafka_bootstrap,
            "portico.auth.v1",
            lambda e: e.auth_audit.user_id == user.id and e.type.startswith("password."),
            want=3,
            raw=True,
        )
    )
    user_events = asyncio.run(
        read_topic(
            infra.kafka_bootstrap, "portico.users.v1", lambda e: e.entity_id == user.id, want=1, raw=True
        )
    )
    haystack = stack.logs().encode() + b"".join(events) + b"".join(user_events)
    for secret in (created, changed, reset_to, created + "x"):
        assert secret.encode() not in haystack
    assert b"$argon2id$" not in haystack
