"""The auth backend end to end: register, login, refresh rotation and reuse, logout, deletion, lockout,
bootstrap admin, JWKS — against the real users backend, Redis and Kafka."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from redis import Redis as SyncRedis

from backends.auth.events import USERS_TOPIC
from backends.auth.lockout import LoginThrottle
from backends.users.cache import UserCache
from backends.users.events import USERS
from harness.auth import AuthStack, auth_stack_fixture
from harness.backends import SERVING, spawn_backend
from harness.events import started_broker
from harness.infra import InfraEnv
from harness.kafka import read_topic
from harness.processes import wait_until
from meshkit.events.outbox import outbox_headers
from meshkit.rpc.status import violations_of
from stubs.auth.v1 import auth_pb2
from stubs.events.v1 import events_pb2
from stubs.users.v1 import users_pb2

pytestmark = pytest.mark.infra
Code = grpc.StatusCode
PASSWORD = "tangerine-Orbit-73"  # noqa: S105 (a test password)


@pytest.fixture(scope="module")
def stack(infra: InfraEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthStack]:
    yield from auth_stack_fixture(
        infra,
        Path(tmp_path_factory.mktemp("auth")),
        {
            "PORTICO_AUTH_REFRESH_REUSE_GRACE_SECONDS": "1",
            "PORTICO_AUTH_LOGIN_ACCOUNT_LIMIT": "3",
            "PORTICO_AUTH_LOGIN_LOCKOUT_SECONDS": "2",
            "PORTICO_AUTH_LOGIN_WINDOW_SECONDS": "60",
        },
    )


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def me(stack: AuthStack, access_token: str) -> users_pb2.User:
    channel, users = stack.users()
    with channel:
        return users.GetMe(  # type: ignore[no-any-return]
            users_pb2.GetMeRequest(), metadata=(("authorization", f"Bearer {access_token}"),), timeout=10
        ).user


def rpc_error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def refresh(stack: AuthStack, token: str, alias: bool = False) -> auth_pb2.RefreshResponse:
    channel, auth = stack.auth()
    request = (
        auth_pb2.RefreshRequest(old_refresh_token=token)
        if alias
        else auth_pb2.RefreshRequest(refresh_token=token)
    )
    with channel:
        return auth.Refresh(request, timeout=10)  # type: ignore[no-any-return]


def test_register_answers_a_user_and_a_working_token_pair(stack: AuthStack, tenant: str) -> None:
    reply = stack.register(tenant, "ann", PASSWORD, first_name="Ann")
    assert reply.user.username == "ann"
    assert reply.user.tenant_id == tenant
    assert (reply.token_type, reply.expires_in) == ("bearer", 600)
    assert len(reply.refresh_token) >= 43  # 256 random bits, base64url
    header = jwt.get_unverified_header(reply.access_token)
    assert (header["alg"], header["typ"]) == ("EdDSA", "at+jwt")
    claims = jwt.decode(reply.access_token, options={"verify_signature": False})
    assert claims["sub"] == reply.user.id
    assert claims["tenant_id"] == tenant
    assert claims["email"] == "ann@example.com"
    assert claims["roles"] == ["user"]
    assert {"jti", "iat", "exp", "iss", "aud"} <= claims.keys()
    assert claims["exp"] - claims["iat"] == 600
    channel, auth = stack.auth()
    with channel:
        jwks = auth.GetJwks(auth_pb2.GetJwksRequest(), timeout=5)  # public: no token
    assert header["kid"] in {key.kid for key in jwks.keys}
    assert me(stack, reply.access_token).id == reply.user.id


def test_register_validation_and_conflicts(stack: AuthStack, tenant: str) -> None:
    stack.register(tenant, "bob", PASSWORD)
    taken = rpc_error(lambda: stack.register(tenant, "bob", PASSWORD, email="other@example.com"))
    assert taken.code() == Code.ALREADY_EXISTS
    for password, reason in (("short", "8"), ("password123", "common"), ("carol-user", "username")):
        weak = rpc_error(lambda p=password: stack.register(tenant, "carol-user", p))
        assert weak.code() == Code.INVALID_ARGUMENT, reason
        assert [field for field, _ in violations_of(weak)] == ["password"]
    bad_email = rpc_error(lambda: stack.register(tenant, "dan", PASSWORD, email="not-an-email"))
    assert bad_email.code() == Code.INVALID_ARGUMENT
    assert "email" in {field for field, _ in violations_of(bad_email)}
    # Nothing half-registered: the same username registers fine afterwards.
    assert stack.register(tenant, "dan", PASSWORD).user.username == "dan"


def test_login_by_username_or_email_and_one_message_for_every_failure(stack: AuthStack, tenant: str) -> None:
    user = stack.register(tenant, "erin", PASSWORD).user
    for identifier in ("erin", "ERIN", "erin@example.com", "Erin@Example.COM"):
        assert me(stack, stack.login(tenant, identifier, PASSWORD).access_token).id == user.id
    wrong = rpc_error(lambda: stack.login(tenant, "erin", "not-the-password"))
    unknown = rpc_error(lambda: stack.login(tenant, "nobody-here", PASSWORD))
    other_tenant = rpc_error(lambda: stack.login(f"{tenant}-x", "erin", PASSWORD))
    for error in (wrong, unknown, other_tenant):
        assert error.code() == Code.UNAUTHENTICATED
        assert error.details() == "Invalid username or password"


def login_with(stack: AuthStack, request: auth_pb2.LoginRequest) -> auth_pb2.LoginResponse:
    channel, auth = stack.auth()
    with channel:
        return auth.Login(request, timeout=15)  # type: ignore[no-any-return]


def test_a_login_name_or_password_longer_than_any_account_has_is_refused_before_the_lookup(
    stack: AuthStack, tenant: str
) -> None:
    huge = "a" * 256 * 1024
    for request, field in (
        (auth_pb2.LoginRequest(tenant_id=tenant, username=huge, password=PASSWORD), "username"),
        (auth_pb2.LoginRequest(tenant_id=tenant, email=huge, password=PASSWORD), "email"),
        (auth_pb2.LoginRequest(tenant_id="t" * 51, username="erin", password=PASSWORD), "tenant_id"),
        (auth_pb2.LoginRequest(tenant_id=tenant, username="erin", password=huge), "password"),
    ):
        refused = rpc_error(lambda r=request: login_with(stack, r))
        assert refused.code() == Code.INVALID_ARGUMENT, field
        assert [name for name, _ in violations_of(refused)] == [field]
    # The longest name an account can have is still looked up (and, here, not found).
    longest = rpc_error(lambda: stack.login(tenant, "b" * 255, PASSWORD))
    assert longest.code() == Code.UNAUTHENTICATED


def test_a_blank_username_falls_back_to_the_email(stack: AuthStack, tenant: str) -> None:
    user = stack.register(tenant, "fay", PASSWORD).user
    reply = login_with(
        stack,
        auth_pb2.LoginRequest(tenant_id=tenant, username="  ", email="fay@example.com", password=PASSWORD),
    )
    assert me(stack, reply.access_token).id == user.id


def test_refresh_rotates_and_the_old_token_is_spent(stack: AuthStack, tenant: str) -> None:
    first = stack.register(tenant, "fay", PASSWORD)
    second = refresh(stack, first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert me(stack, second.access_token).username == "fay"
    third = refresh(stack, second.refresh_token, alias=True)  # the earlier name, old_refresh_token, works too
    assert third.access_token


def test_reuse_of_a_spent_refresh_token_revokes_the_whole_login(
    stack: AuthStack, tenant: str, infra: InfraEnv
) -> None:
    login = stack.register(tenant, "gus", PASSWORD)
    rotated = refresh(stack, login.refresh_token)
    time.sleep(1.2)  # past the reuse grace: this is a replay, not a concurrent refresh
    replay = rpc_error(lambda: refresh(stack, login.refresh_token))
    assert replay.code() == Code.UNAUTHENTICATED
    assert replay.details() == "Invalid token, Please login again"
    # Every token of that login is dead: the newest refresh token and the access tokens.
    assert rpc_error(lambda: refresh(stack, rotated.refresh_token)).code() == Code.UNAUTHENTICATED
    assert rpc_error(lambda: me(stack, rotated.access_token)).code() == Code.UNAUTHENTICATED
    # Another login of the same user is untouched.
    assert me(stack, stack.login(tenant, "gus", PASSWORD).access_token).username == "gus"
    events = asyncio.run(
        read_topic(
            infra.kafka_bootstrap,
            "portico.auth.v1",
            lambda e: e.auth_audit.user_id == login.user.id and e.type == "token.reuse_detected",
            want=1,
        )
    )
    assert events[0].tenant_id == tenant


def test_concurrent_refreshes_of_one_token_yield_exactly_one_pair(stack: AuthStack, tenant: str) -> None:
    login = stack.register(tenant, "hal", PASSWORD)
    results: list[Any] = []
    barrier = threading.Barrier(4)

    def attempt() -> None:
        barrier.wait()
        try:
            results.append(refresh(stack, login.refresh_token))
        except grpc.RpcError as exc:
            results.append(exc.code())

    workers = [threading.Thread(target=attempt) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    pairs = [r for r in results if isinstance(r, auth_pb2.RefreshResponse)]
    assert len(pairs) == 1
    assert results.count(Code.UNAUTHENTICATED) == 3
    # The one pair that was issued still works: a race is not treated as theft.
    assert refresh(stack, pairs[0].refresh_token).access_token


def test_logout_ends_the_access_token_and_its_login_at_once(stack: AuthStack, tenant: str) -> None:
    login = stack.register(tenant, "ivy", PASSWORD)
    channel, auth = stack.auth()
    with channel:
        reply = auth.Logout(
            auth_pb2.LogoutRequest(),
            metadata=(("authorization", f"Bearer {login.access_token}"),),
            timeout=10,
        )
    assert reply.status == "logout successful"
    assert rpc_error(lambda: me(stack, login.access_token)).code() == Code.UNAUTHENTICATED
    assert rpc_error(lambda: refresh(stack, login.refresh_token)).code() == Code.UNAUTHENTICATED
    assert rpc_error(lambda: stack.auth()[1].Logout(auth_pb2.LogoutRequest(), timeout=5)).code() == (
        Code.UNAUTHENTICATED
    )


def test_a_deleted_user_cannot_log_in_and_their_tokens_stop(stack: AuthStack, tenant: str) -> None:
    login = stack.register(tenant, "jay", PASSWORD)
    channel, users = stack.users()
    with channel:
        users.DeleteUser(
            users_pb2.DeleteUserRequest(user_id=login.user.id),
            metadata=(("authorization", f"Bearer {login.access_token}"),),
            timeout=10,
        )
    assert rpc_error(lambda: me(stack, login.access_token)).code() == Code.UNAUTHENTICATED

    def login_refused() -> bool:
        try:
            stack.login(tenant, "jay", PASSWORD)
        except grpc.RpcError as exc:
            return exc.code() == Code.UNAUTHENTICATED and exc.details() == "Invalid username or password"
        return False

    wait_until(login_refused, 30, "the user.deleted event to disable the login")
    assert rpc_error(lambda: refresh(stack, login.refresh_token)).code() == Code.UNAUTHENTICATED
    # The username and email are free again.
    assert stack.register(tenant, "jay", PASSWORD).user.id != login.user.id


def test_a_username_change_reaches_the_login_index(stack: AuthStack, tenant: str) -> None:
    login = stack.register(tenant, "kim", PASSWORD)
    channel, users = stack.users()
    with channel:
        users.UpdateUser(
            users_pb2.UpdateUserRequest(user_id=login.user.id, username="kimberly"),
            metadata=(("authorization", f"Bearer {login.access_token}"),),
            timeout=10,
        )

    def new_name_works() -> bool:
        try:
            return bool(stack.login(tenant, "kimberly", PASSWORD).access_token)
        except grpc.RpcError:
            return False

    wait_until(new_name_works, 30, "the user.updated event to reach auth")


def test_a_deactivated_user_cannot_log_in_or_refresh_until_reactivated(stack: AuthStack) -> None:
    # The bootstrap admin's tenant: only an admin changes is_active.
    tenant, name = "default", f"nia-{uuid.uuid4().hex[:6]}"
    login = stack.register(tenant, name, PASSWORD)
    admin_token = stack.admin_token()
    channel, users = stack.users()

    def set_active(active: bool) -> None:
        users.UpdateUser(
            users_pb2.UpdateUserRequest(user_id=login.user.id, is_active=active),
            metadata=(("authorization", f"Bearer {admin_token}"),),
            timeout=10,
        )

    def login_answer() -> tuple[Code, str]:
        try:
            stack.login(tenant, name, PASSWORD)
        except grpc.RpcError as exc:
            return exc.code(), exc.details()  # type: ignore[no-any-return]
        return Code.OK, ""

    refused = (Code.UNAUTHENTICATED, "Invalid username or password")  # one answer for every failure
    with channel:
        set_active(False)
        wait_until(lambda: login_answer() == refused, 30, "the user.updated event to stop logins")
        assert rpc_error(lambda: refresh(stack, login.refresh_token)).code() == Code.UNAUTHENTICATED
        set_active(True)
        wait_until(lambda: login_answer()[0] == Code.OK, 30, "the user.updated event to allow logins again")


def test_lockout_answers_exactly_like_a_wrong_password_and_expires(stack: AuthStack, tenant: str) -> None:
    stack.register(tenant, "lee", PASSWORD)
    for _ in range(3):
        rpc_error(lambda: stack.login(tenant, "lee", "wrong-password-1"))
    locked = rpc_error(lambda: stack.login(tenant, "lee", PASSWORD))  # the right password, but locked
    assert locked.code() == Code.UNAUTHENTICATED
    assert locked.details() == "Invalid username or password"
    # The lock is the account's, however it is named.
    by_email = rpc_error(lambda: stack.login(tenant, "lee@example.com", PASSWORD))
    assert by_email.details() == "Invalid username or password"
    wait_until(lambda: _logs_in(stack, tenant, "lee"), 15, "the temporary lockout to end")


def _logs_in(stack: AuthStack, tenant: str, username: str) -> bool:
    try:
        return bool(stack.login(tenant, username, PASSWORD).access_token)
    except grpc.RpcError:
        return False


def test_bootstrap_admin_logs_in_with_the_configured_password(stack: AuthStack) -> None:
    token = stack.admin_token()
    assert "admin" in jwt.decode(token, options={"verify_signature": False})["roles"]


def test_audit_events_carry_who_and_where(stack: AuthStack, tenant: str, infra: InfraEnv) -> None:
    user = stack.register(tenant, "max", PASSWORD).user
    stack.login(tenant, "max", PASSWORD, **{"x-request-id": "req-audit-1", **stack.as_gateway("203.0.113.9")})
    rpc_error(lambda: stack.login(tenant, "max", "wrong-password-2"))
    events = asyncio.run(
        read_topic(infra.kafka_bootstrap, "portico.auth.v1", lambda e: e.tenant_id == tenant, want=3)
    )
    kinds = [e.type for e in events]
    assert kinds.count("login.succeeded") == 2  # registration logs in too
    assert "login.failed" in kinds
    ok = next(e for e in events if e.actor.request_id == "req-audit-1")
    assert (ok.auth_audit.user_id, ok.actor.client_ip) == (user.id, "203.0.113.9")


def _ip_key(ip: str) -> str:
    key = LoginThrottle.ip_key(ip)
    assert key is not None
    return key


def test_a_direct_caller_cannot_choose_the_client_ip_of_its_failed_logins(
    stack: AuthStack, tenant: str, infra: InfraEnv
) -> None:
    """A forged x-client-ip without the forwarding secret counts against the caller's own address, and
    the audit trail names that address; the gateway's (with the secret) is believed."""
    forged, forwarded = (f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}" for _ in range(2))
    redis = SyncRedis.from_url(infra.redis_url)
    peer_key, forged_key, forwarded_key = (_ip_key(ip) for ip in ("127.0.0.1", forged, forwarded))
    stack.register(tenant, "omar", PASSWORD)
    try:
        counted_before = set(redis.zrange(peer_key, 0, -1))
        metadata = {"x-request-id": "req-forged-1", "x-client-ip": forged}
        rpc_error(lambda: stack.login(tenant, "omar", "wrong-password-3", **metadata))
        assert set(redis.zrange(peer_key, 0, -1)) - counted_before  # a new failure of the peer's
        assert not redis.exists(forged_key)
        rpc_error(lambda: stack.login(tenant, "omar", "wrong-password-4", **stack.as_gateway(forwarded)))
        assert redis.exists(forwarded_key)
    finally:
        redis.close()
    [failed] = asyncio.run(
        read_topic(
            infra.kafka_bootstrap,
            "portico.auth.v1",
            lambda e: e.tenant_id == tenant and e.actor.request_id == "req-forged-1",
            want=1,
        )
    )
    assert (failed.type, failed.actor.client_ip) == ("login.failed", "127.0.0.1")


def test_the_profile_event_names_the_end_client_not_the_auth_backend(
    stack: AuthStack, tenant: str, infra: InfraEnv
) -> None:
    channel, stub = stack.auth()
    with channel:
        stub.Register(
            auth_pb2.RegisterRequest(
                tenant_id=tenant, username="ines", email="ines@example.com", password=PASSWORD
            ),
            metadata=(("x-request-id", "req-register-1"), *stack.as_gateway("198.51.100.23").items()),
            timeout=15,
        )
    events = asyncio.run(
        read_topic(
            infra.kafka_bootstrap,
            "portico.users.v1",
            lambda e: e.tenant_id == tenant and e.type == "user.created",
            want=1,
        )
    )
    assert (events[0].actor.request_id, events[0].actor.client_ip) == ("req-register-1", "198.51.100.23")


def test_no_secret_in_any_log_line_or_event(stack: AuthStack, tenant: str, infra: InfraEnv) -> None:
    secret = f"Secret-{uuid.uuid4().hex}"
    login = stack.register(tenant, "nia", secret)
    rotated = refresh(stack, login.refresh_token)
    rpc_error(lambda: stack.login(tenant, "nia", secret + "x"))
    stack.login(tenant, "nia", secret, **stack.as_gateway("192.0.2.7"))  # with the forwarding secret
    events = asyncio.run(
        read_topic(
            infra.kafka_bootstrap, "portico.auth.v1", lambda e: e.tenant_id == tenant, want=4, raw=True
        )
    )
    user_events = asyncio.run(
        read_topic(
            infra.kafka_bootstrap, "portico.users.v1", lambda e: e.tenant_id == tenant, want=1, raw=True
        )
    )
    haystack = stack.logs().encode() + b"".join(events) + b"".join(user_events)
    needles = {
        "password": secret,
        "refresh token": login.refresh_token,
        "rotated refresh token": rotated.refresh_token,
        "access token signature": login.access_token.rsplit(".", 1)[1],
        "argon2 hash": "$argon2id$",
        "forwarding secret": stack.env["PORTICO_FORWARDING_SECRET"],
    }
    for name, needle in needles.items():
        assert needle.encode() not in haystack, f"a {name} leaked"
        assert base64.b64encode(needle.encode()) not in haystack, f"a {name} leaked (base64)"
    assert json.dumps(secret).encode() not in haystack


def publish_user_events(infra: InfraEnv, *events: events_pb2.Event) -> None:
    """Put ``events`` on the users topic as the users backend's relay would, in this order."""

    async def publish() -> None:
        async with started_broker(infra.kafka_bootstrap, service="users-test") as broker:
            for event in events:
                key, headers = event.entity_id.encode(), outbox_headers(event)
                await broker.publish(event.SerializeToString(), USERS_TOPIC, key=key, headers=headers)

    asyncio.run(publish())


def renamed(user: users_pb2.User, tenant: str, username: str) -> events_pb2.Event:
    """The ``user.updated`` event the users backend writes when ``user`` is renamed to ``username``."""
    changed = users_pb2.User()
    changed.CopyFrom(user)
    changed.username = username
    return USERS.event("user.updated", tenant, user.id, actor=None, entity=changed)


def test_a_rename_that_arrives_before_the_one_it_depends_on_is_repaired(
    stack: AuthStack, tenant: str, infra: InfraEnv
) -> None:
    # In the users backend bob became "rob" and then carl took "bob"; auth hears of carl's rename first.
    bob = stack.register(tenant, "bob", PASSWORD).user
    carl_password = PASSWORD + "-carl"
    carl = stack.register(tenant, "carl", carl_password).user

    def sub(reply: auth_pb2.LoginResponse) -> str:
        return str(jwt.decode(reply.access_token, options={"verify_signature": False})["sub"])

    publish_user_events(infra, renamed(carl, tenant, "bob"))
    wait_until(
        lambda: any(carl.id in line and "parked" in line for line in stack.logs().splitlines()),
        30,
        "carl's rename to be parked",
    )
    assert sub(stack.login(tenant, "bob", PASSWORD)) == bob.id  # the holder keeps it until it lets go
    assert sub(stack.login(tenant, carl.email, carl_password)) == carl.id  # carl still logs in by email

    publish_user_events(infra, renamed(bob, tenant, "rob"))

    def rob_works() -> bool:
        try:
            return sub(stack.login(tenant, "rob", PASSWORD)) == bob.id
        except grpc.RpcError:
            return False

    wait_until(rob_works, 30, "bob's rename to reach auth")
    # The rename let go of "bob", and the parked name was handed over in the same transaction.
    assert sub(stack.login(tenant, "BOB", carl_password)) == carl.id
    assert rpc_error(lambda: stack.login(tenant, "carl", carl_password)).code() == Code.UNAUTHENTICATED


@pytest.fixture(scope="module")
def strict_stack(infra: InfraEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthStack]:
    """A stack whose lockouts outlast any test, so a test can look at one without racing its end."""
    yield from auth_stack_fixture(
        infra,
        Path(tmp_path_factory.mktemp("auth-strict")),
        {
            "PORTICO_AUTH_LOGIN_ACCOUNT_LIMIT": "3",
            "PORTICO_AUTH_LOGIN_LOCKOUT_SECONDS": "600",
            "PORTICO_AUTH_LOGIN_WINDOW_SECONDS": "600",
            "PORTICO_AUTH_LOGIN_IP_LIMIT": "100000",  # the session's other failures from 127.0.0.1
        },
    )


def test_the_lockout_counts_against_the_account_not_the_name_it_has(
    strict_stack: AuthStack, tenant: str, infra: InfraEnv
) -> None:
    # carl takes "bob" while bob still holds it (bob's rename is on its way): carl's username is parked,
    # so it names bob's account. Failures by carl's email are carl's, and lock carl alone.
    bob = strict_stack.register(tenant, "bob", PASSWORD).user
    carl_password = PASSWORD + "-carl"
    carl = strict_stack.register(tenant, "carl", carl_password).user
    publish_user_events(infra, renamed(carl, tenant, "bob"))
    wait_until(
        lambda: any(carl.id in line and "parked" in line for line in strict_stack.logs().splitlines()),
        30,
        "carl's rename to be parked",
    )
    for _ in range(3):
        rpc_error(lambda: strict_stack.login(tenant, carl.email, "wrong-password-1"))
    assert (
        rpc_error(lambda: strict_stack.login(tenant, carl.email, carl_password)).code()
        == Code.UNAUTHENTICATED
    )
    reply = strict_stack.login(tenant, "bob", PASSWORD)
    assert jwt.decode(reply.access_token, options={"verify_signature": False})["sub"] == bob.id


# -- the users backend decides, not auth's copy of the profile (issue 14) --------------------------------
# Auth's copy follows the users backend's events. To leave no race, these tests change the profile in
# the users backend's database and drop its cache entry (what a committed change does) with no event:
# auth, as it would before consuming one, can only learn of the change by asking.


def change_without_event(
    stack: AuthStack, infra: InfraEnv, tenant: str, user_id: str, **columns: str
) -> None:
    db = sqlite3.connect(stack.log_dir / "run" / "users.db")
    try:
        with db:
            assignments = ", ".join(f"{name} = ?" for name in columns)
            changed = db.execute(f"UPDATE users SET {assignments} WHERE id = ?", (*columns.values(), user_id))  # noqa: S608 (test-chosen column names)
            assert changed.rowcount == 1
    finally:
        db.close()
    key = UserCache.key(tenant, user_id)
    with SyncRedis.from_url(infra.redis_url) as redis:
        redis.incr(f"{key}:gen")
        redis.delete(key)


def roles_of(token: str) -> list[str]:
    roles: list[str] = jwt.decode(token, options={"verify_signature": False})["roles"]
    return roles


def test_a_deleted_user_cannot_log_in_or_refresh_before_auth_hears_of_it(
    stack: AuthStack, tenant: str, infra: InfraEnv
) -> None:
    login = stack.register(tenant, "uma", PASSWORD)
    change_without_event(stack, infra, tenant, login.user.id, deleted_at="2026-01-01 00:00:00.000000")
    refused = rpc_error(lambda: stack.login(tenant, "uma", PASSWORD))
    assert (refused.code(), refused.details()) == (Code.UNAUTHENTICATED, "Invalid username or password")
    spent = rpc_error(lambda: refresh(stack, login.refresh_token))
    assert (spent.code(), spent.details()) == (Code.UNAUTHENTICATED, "Invalid token, Please login again")


def promoted_admin(stack: AuthStack, name: str) -> tuple[str, auth_pb2.LoginResponse]:
    """A new user of the bootstrap admin's tenant made admin, once auth has applied it: their id and an
    admin login."""
    tenant = "default"
    login = stack.register(tenant, name, PASSWORD)
    admin_token = stack.admin_token()
    channel, users = stack.users()
    with channel:
        users.UpdateUser(
            users_pb2.UpdateUserRequest(user_id=login.user.id, roles=["admin", "user"]),
            metadata=(("authorization", f"Bearer {admin_token}"),),
            timeout=10,
        )
    wait_until(
        lambda: "admin" in roles_of(stack.login(tenant, name, PASSWORD).access_token),
        30,
        "auth to apply the promotion",
    )
    return login.user.id, stack.login(tenant, name, PASSWORD)


def test_a_demoted_admin_logs_in_with_the_new_roles_at_once(stack: AuthStack, infra: InfraEnv) -> None:
    tenant, name = "default", f"vic-{uuid.uuid4().hex[:6]}"
    user_id, before_demotion = promoted_admin(stack, name)
    change_without_event(stack, infra, tenant, user_id, roles='["user"]')  # auth's copy: admin
    assert roles_of(stack.login(tenant, name, PASSWORD).access_token) == ["user"]
    # A refresh of a login from before the demotion issues the new roles too.
    assert roles_of(refresh(stack, before_demotion.refresh_token).access_token) == ["user"]


def test_tokens_issued_with_roles_withdrawn_in_flight_outlive_the_withdrawals_event(
    stack: AuthStack, infra: InfraEnv
) -> None:
    tenant, name = "default", f"wes-{uuid.uuid4().hex[:6]}"
    user_id, before_demotion = promoted_admin(stack, name)
    change_without_event(stack, infra, tenant, user_id, roles='["user"]')  # auth's copy: admin
    after = stack.login(tenant, name, PASSWORD)
    refreshed = refresh(stack, before_demotion.refresh_token)
    assert roles_of(after.access_token) == roles_of(refreshed.access_token) == ["user"]
    # The admin token from before is dead at once: the login applied the withdrawal as auth would.
    assert rpc_error(lambda: me(stack, before_demotion.access_token)).code() == Code.UNAUTHENTICATED

    # The demotion's event arrives now, then a rename that shows when auth has consumed both.
    demoted = me(stack, after.access_token)
    assert list(demoted.roles) == ["user"]
    demotion = USERS.event("user.updated", tenant, user_id, actor=None, entity=demoted)
    publish_user_events(infra, demotion, renamed(demoted, tenant, f"{name}x"))
    wait_until(lambda: _logs_in(stack, tenant, f"{name}x"), 30, "auth to consume the demotion")
    # It changed nothing any more: the tokens issued with the new roles still work.
    assert me(stack, after.access_token).id == me(stack, refreshed.access_token).id == user_id


# Last in the module: it stops the stack's users backend (and starts it again).
def test_login_and_refresh_answer_unavailable_while_users_is_down(stack: AuthStack, tenant: str) -> None:
    login = stack.register(tenant, "wes", PASSWORD)
    ended = stack.login(tenant, "wes", PASSWORD)  # a second login, logged out: its refresh token is dead
    channel, auth = stack.auth()
    with channel:
        auth.Logout(
            auth_pb2.LogoutRequest(),
            metadata=(("authorization", f"Bearer {ended.access_token}"),),
            timeout=10,
        )
    users = stack.backends["users"]
    port = int(users.target.rsplit(":", 1)[1])
    users.stop()
    try:
        down = rpc_error(lambda: stack.login(tenant, "wes", PASSWORD))
        assert (down.code(), down.details()) == (Code.UNAVAILABLE, "The user service is unavailable")
        not_refreshed = rpc_error(lambda: refresh(stack, login.refresh_token))
        assert not_refreshed.code() == Code.UNAVAILABLE
        # A wrong password is still a wrong password, and a dead refresh token still dead: neither needs a
        # word from users.
        wrong = rpc_error(lambda: stack.login(tenant, "wes", "not-the-password"))
        assert wrong.code() == Code.UNAUTHENTICATED
        assert rpc_error(lambda: refresh(stack, ended.refresh_token)).code() == Code.UNAUTHENTICATED
        assert rpc_error(lambda: refresh(stack, "not-a-refresh-token")).code() == Code.UNAUTHENTICATED
    finally:
        again = spawn_backend("users", stack.env, stack.log_dir, port=port)
        stack.backends["users"] = again
        wait_until(lambda: again.health() == SERVING, 90, "users SERVING again")

    meanwhile: list[Code] = []

    def refreshes() -> bool:
        try:
            return bool(refresh(stack, login.refresh_token).access_token)
        except grpc.RpcError as exc:
            meanwhile.append(exc.code())
            return False

    # The refused refresh rotated nothing: the token the client kept still works.
    wait_until(refreshes, 30, "a refresh once users is back")
    assert set(meanwhile) <= {Code.UNAVAILABLE}  # until auth's channel has reconnected
