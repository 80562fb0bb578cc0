"""users.v1.UserService over real gRPC: validation, authorization matrix, soft delete, tenant isolation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import jwt
import pytest
from redis.asyncio import Redis

from harness.infra import InfraEnv
from harness.users import UsersBackend
from meshkit.auth.revocation import revoke_jti, valid_after_key
from meshkit.rpc.status import violations_of
from stubs.users.v1 import users_pb2, users_pb2_grpc

pytestmark = pytest.mark.infra
Code = grpc.StatusCode


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def stub(users_backend: UsersBackend) -> Iterator[users_pb2_grpc.UserServiceStub]:
    channel, stub = users_backend.stub()
    with channel:
        yield stub


def call(users_backend: UsersBackend, method: Any, request: Any, token: str | None) -> Any:
    metadata = users_backend.metadata(token) if token else ()
    return method(request, metadata=metadata, timeout=10)


def code_of(users_backend: UsersBackend, method: Any, request: Any, token: str | None) -> Code:
    with pytest.raises(grpc.RpcError) as err:
        call(users_backend, method, request, token)
    return err.value.code()  # type: ignore[no-any-return]


def member(users_backend: UsersBackend, tenant: str, name: str = "alice") -> tuple[dict[str, Any], str]:
    _, admin_token = users_backend.admin(tenant)
    user = users_backend.create_user(
        admin_token, email=f"{name}@example.com", username=name, first_name=name.capitalize()
    )
    return user, users_backend.token(user)


def test_admin_creates_a_user_with_defaults(users_backend: UsersBackend, tenant: str) -> None:
    _, admin_token = users_backend.admin(tenant)
    user = users_backend.create_user(
        admin_token, email="John.Doe@Example.com", first_name="John", last_name="Doe", phone="+1234567890"
    )
    assert user["tenant_id"] == tenant
    assert user["username"] == "John.Doe"  # derived from the email: CreateUser needs none
    assert user["roles"] == ["user"]
    assert user["is_active"] is True
    assert user["created_at"].endswith("Z")
    uuid.UUID(user["id"])


def test_every_invalid_field_is_reported(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    _, admin_token = users_backend.admin(tenant)
    request = users_pb2.CreateUserRequest(
        email="not-an-email", username="x", first_name="J0hn", phone="12345", roles=["root"]
    )
    with pytest.raises(grpc.RpcError) as err:
        call(users_backend, stub.CreateUser, request, admin_token)
    assert err.value.code() == Code.INVALID_ARGUMENT
    fields = {field for field, _ in violations_of(err.value)}
    assert fields == {"email", "username", "first_name", "phone", "roles"}


def test_duplicates_are_conflicts_case_insensitively(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    _, admin_token = users_backend.admin(tenant)
    users_backend.create_user(admin_token, email="dup@example.com", username="dupuser")
    for fields in (
        {"email": "DUP@example.com", "username": "other"},
        {"email": "x@example.com", "username": "DupUser"},
    ):
        code = code_of(users_backend, stub.CreateUser, users_pb2.CreateUserRequest(**fields), admin_token)
        assert code == Code.ALREADY_EXISTS


def test_authentication_is_required(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub
) -> None:
    assert code_of(users_backend, stub.GetMe, users_pb2.GetMeRequest(), None) == Code.UNAUTHENTICATED
    assert code_of(users_backend, stub.GetMe, users_pb2.GetMeRequest(), "garbage") == Code.UNAUTHENTICATED
    expired = users_backend.issuer.token(str(uuid.uuid4()), ttl=-120)
    assert code_of(users_backend, stub.GetMe, users_pb2.GetMeRequest(), expired) == Code.UNAUTHENTICATED


def test_getme_with_a_token_for_a_user_that_does_not_exist_is_refused(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    # Only a holder of auth's signing key can make one; GetMe reads the caller's own profile anyway. The
    # other methods trust a valid token that no revocation mark refuses (no profile read per call).
    ghost = users_backend.issuer.token(str(uuid.uuid4()), tenant, ("admin",))
    assert code_of(users_backend, stub.GetMe, users_pb2.GetMeRequest(), ghost) == Code.UNAUTHENTICATED


def _refused_everywhere(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, token: str, other_id: str
) -> None:
    """The token is refused by the methods that read no profile of the caller, and by GetMe."""
    for method, request in (
        (stub.GetUser, users_pb2.GetUserRequest(user_id=other_id)),
        (stub.ListUsers, users_pb2.ListUsersRequest()),
        (stub.SearchUsers, users_pb2.SearchUsersRequest(q="someone")),
        (stub.UpdateUser, users_pb2.UpdateUserRequest(user_id=other_id, first_name="X")),
        (stub.GetMe, users_pb2.GetMeRequest()),
    ):
        assert code_of(users_backend, method, request, token) == Code.UNAUTHENTICATED, method


def test_a_deleted_caller_is_refused_by_every_method(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    _, admin_token = users_backend.admin(tenant)
    other, _ = member(users_backend, tenant, "olga")
    dora, dora_token = member(users_backend, tenant, "dora")
    get_other = users_pb2.GetUserRequest(user_id=other["id"])
    assert call(users_backend, stub.GetUser, get_other, dora_token).user.id == other["id"]  # warm
    call(users_backend, stub.DeleteUser, users_pb2.DeleteUserRequest(user_id=dora["id"]), admin_token)
    _refused_everywhere(users_backend, stub, dora_token, other["id"])


def test_a_deactivated_caller_is_refused_by_every_method(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    _, admin_token = users_backend.admin(tenant)
    other, _ = member(users_backend, tenant, "oleg")
    dan, dan_token = member(users_backend, tenant, "dan")
    get_other = users_pb2.GetUserRequest(user_id=other["id"])
    assert call(users_backend, stub.GetUser, get_other, dan_token).user.id == other["id"]  # warm
    deactivate = users_pb2.UpdateUserRequest(user_id=dan["id"], is_active=False)
    call(users_backend, stub.UpdateUser, deactivate, admin_token)
    _refused_everywhere(users_backend, stub, dan_token, other["id"])


def test_a_deleted_caller_stays_refused_here_without_the_redis_mark(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str, infra: InfraEnv
) -> None:
    # The mark in Redis is best effort (a deletion commits with Redis away): the backend that deleted the
    # user refuses their tokens from its in-process set too, with no profile read.
    _, admin_token = users_backend.admin(tenant)
    other, _ = member(users_backend, tenant, "otto")
    eve, eve_token = member(users_backend, tenant, "eve")
    call(users_backend, stub.DeleteUser, users_pb2.DeleteUserRequest(user_id=eve["id"]), admin_token)

    async def forget_mark() -> int:
        redis = Redis.from_url(infra.redis_url)
        try:
            return int(await redis.delete(valid_after_key(tenant, eve["id"])))
        finally:
            await redis.aclose()

    assert asyncio.run(forget_mark()) == 1  # the mark was there, and is gone now
    _refused_everywhere(users_backend, stub, eve_token, other["id"])


def test_authorization_matrix(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    admin, admin_token = users_backend.admin(tenant)
    alice, alice_token = member(users_backend, tenant, "alice")
    bob, _ = member(users_backend, tenant, "bob")

    # Plain users cannot create users.
    create = users_pb2.CreateUserRequest(email="eve@example.com")
    assert code_of(users_backend, stub.CreateUser, create, alice_token) == Code.PERMISSION_DENIED
    # A user updates themself, not others; admin-only fields stay admin-only.
    own = call(
        users_backend,
        stub.UpdateUser,
        users_pb2.UpdateUserRequest(user_id=alice["id"], first_name="Alicia"),
        alice_token,
    )
    assert own.user.first_name == "Alicia"
    other = users_pb2.UpdateUserRequest(user_id=bob["id"], first_name="Robert")
    assert code_of(users_backend, stub.UpdateUser, other, alice_token) == Code.PERMISSION_DENIED
    for field in ({"email": "a2@example.com"}, {"roles": ["admin"]}, {"is_active": False}):
        request = users_pb2.UpdateUserRequest(user_id=alice["id"], **field)
        assert code_of(users_backend, stub.UpdateUser, request, alice_token) == Code.PERMISSION_DENIED
    # The admin may change anyone in the tenant, including admin-only fields.
    promoted = call(
        users_backend,
        stub.UpdateUser,
        users_pb2.UpdateUserRequest(user_id=bob["id"], roles=["admin", "user"]),
        admin_token,
    )
    assert list(promoted.user.roles) == ["admin", "user"]
    # Users delete only themselves.
    delete_bob = users_pb2.DeleteUserRequest(user_id=bob["id"])
    assert code_of(users_backend, stub.DeleteUser, delete_bob, alice_token) == Code.PERMISSION_DENIED
    assert (
        call(
            users_backend, stub.DeleteUser, users_pb2.DeleteUserRequest(user_id=alice["id"]), alice_token
        ).message
        == "User deleted successfully"
    )
    assert admin["id"]


def test_tenants_are_isolated(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    alice, alice_token = member(users_backend, tenant, "alice")
    other_tenant = f"{tenant}-b"
    _, other_admin_token = users_backend.admin(other_tenant)
    get = users_pb2.GetUserRequest(user_id=alice["id"])
    assert code_of(users_backend, stub.GetUser, get, other_admin_token) == Code.NOT_FOUND
    delete = users_pb2.DeleteUserRequest(user_id=alice["id"])
    assert code_of(users_backend, stub.DeleteUser, delete, other_admin_token) == Code.NOT_FOUND
    listed = call(users_backend, stub.ListUsers, users_pb2.ListUsersRequest(), other_admin_token)
    assert alice["id"] not in {u.id for u in listed.users}
    # Naming another tenant explicitly is refused outright.
    foreign = users_pb2.GetUserRequest(user_id=alice["id"], tenant_id=other_tenant)
    assert code_of(users_backend, stub.GetUser, foreign, alice_token) == Code.PERMISSION_DENIED


def test_malformed_and_unknown_ids(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    _, admin_token = users_backend.admin(tenant)
    for bad in ("507f1f77bcf86cd799439011", "../../etc", "' OR 1=1 --"):
        assert code_of(users_backend, stub.GetUser, users_pb2.GetUserRequest(user_id=bad), admin_token) == (
            Code.INVALID_ARGUMENT
        )
    unknown = users_pb2.GetUserRequest(user_id=str(uuid.uuid4()))
    assert code_of(users_backend, stub.GetUser, unknown, admin_token) == Code.NOT_FOUND


def test_soft_delete_ends_the_user_and_frees_email_and_username(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    _, admin_token = users_backend.admin(tenant)
    carol, carol_token = member(users_backend, tenant, "carol")
    assert call(users_backend, stub.GetMe, users_pb2.GetMeRequest(), carol_token).user.id == carol["id"]
    call(users_backend, stub.DeleteUser, users_pb2.DeleteUserRequest(user_id=carol["id"]), admin_token)

    get = users_pb2.GetUserRequest(user_id=carol["id"])
    assert code_of(users_backend, stub.GetUser, get, admin_token) == Code.NOT_FOUND
    # Her token stops working at once.
    assert code_of(users_backend, stub.GetMe, users_pb2.GetMeRequest(), carol_token) == Code.UNAUTHENTICATED
    # Her email and username can be used again.
    again = users_backend.create_user(admin_token, email="CAROL@example.com", username="carol")
    assert again["id"] != carol["id"]


def test_update_ignores_empty_strings_and_reports_duplicates(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    dave, dave_token = member(users_backend, tenant, "dave")
    member(users_backend, tenant, "erin")
    unchanged = call(
        users_backend,
        stub.UpdateUser,
        users_pb2.UpdateUserRequest(user_id=dave["id"], first_name="", phone=""),
        dave_token,
    )
    assert unchanged.user.first_name == "Dave"
    taken = users_pb2.UpdateUserRequest(user_id=dave["id"], username="ERIN")
    assert code_of(users_backend, stub.UpdateUser, taken, dave_token) == Code.ALREADY_EXISTS


def test_list_pagination(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    _, admin_token = users_backend.admin(tenant)
    for i in range(5):
        users_backend.create_user(admin_token, email=f"p{i}@example.com", username=f"page{i}")
    first = call(users_backend, stub.ListUsers, users_pb2.ListUsersRequest(page=1, page_size=2), admin_token)
    assert (first.total, first.page, first.page_size, len(first.users)) == (6, 1, 2, 2)  # 5 + the admin
    last = call(users_backend, stub.ListUsers, users_pb2.ListUsersRequest(page=3, page_size=2), admin_token)
    assert len(last.users) == 2
    assert last.total == 6
    beyond = call(users_backend, stub.ListUsers, users_pb2.ListUsersRequest(page=9, page_size=2), admin_token)
    assert list(beyond.users) == []
    assert beyond.total == 6
    for page, size in ((-1, 10), (1, 101)):
        request = users_pb2.ListUsersRequest(page=page, page_size=size)
        assert code_of(users_backend, stub.ListUsers, request, admin_token) == Code.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "q",
    [
        '"ab',
        '""""',
        "john*",
        "NEAR(a b)",
        "a OR b",
        "-x",
        "' OR 1=1 --",
        "(((",
        "first_name:x",
        "😀😀",
        "^start",
        'a"b"c"',
        "AND AND",
        "%_%",
        "\\\\",
    ],
)
def test_hostile_search_input_never_fails(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str, q: str
) -> None:
    _, admin_token = users_backend.admin(tenant)
    reply = call(users_backend, stub.SearchUsers, users_pb2.SearchUsersRequest(q=q), admin_token)
    assert reply.total >= 0


def test_a_nul_in_the_search_is_invalid_not_a_failure(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    _, admin_token = users_backend.admin(tenant)
    with pytest.raises(grpc.RpcError) as caught:
        call(users_backend, stub.SearchUsers, users_pb2.SearchUsersRequest(q="\x00ab"), admin_token)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations_of(caught.value) == [("q", "must not contain NUL characters")]


def test_search_finds_by_name_with_stemming_and_phrases(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    _, admin_token = users_backend.admin(tenant)
    john = users_backend.create_user(admin_token, email="jd@example.com", first_name="John", last_name="Doe")
    users_backend.create_user(admin_token, email="dj@example.com", first_name="Doe", last_name="John")
    runner = users_backend.create_user(
        admin_token, email="r@example.com", first_name="Running", last_name="Bear"
    )

    def found(q: str) -> set[str]:
        reply = call(users_backend, stub.SearchUsers, users_pb2.SearchUsersRequest(q=q), admin_token)
        return {u.id for u in reply.users}

    assert john["id"] in found("JOHN")
    assert found('"John Doe"') == {john["id"]}
    assert runner["id"] in found("run")
    short = users_pb2.SearchUsersRequest(q="j")
    assert code_of(users_backend, stub.SearchUsers, short, admin_token) == Code.INVALID_ARGUMENT


def test_a_logged_out_token_is_refused_at_once(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str, infra: InfraEnv
) -> None:
    user, token = member(users_backend, tenant, "frank")
    assert call(users_backend, stub.GetMe, users_pb2.GetMeRequest(), token).user.id == user["id"]
    claims = jwt.decode(token, options={"verify_signature": False})

    async def revoke() -> None:
        redis = Redis.from_url(infra.redis_url)
        try:
            await revoke_jti(redis, claims["tenant_id"], claims["jti"], claims["exp"])
        finally:
            await redis.aclose()

    asyncio.run(revoke())
    assert code_of(users_backend, stub.GetMe, users_pb2.GetMeRequest(), token) == Code.UNAUTHENTICATED
    # GetUser reads its cache entry in the same round trip as the marks: refused all the same.
    get = users_pb2.GetUserRequest(user_id=user["id"])
    assert code_of(users_backend, stub.GetUser, get, token) == Code.UNAUTHENTICATED
    fresh = users_backend.token(user)  # another token of the same user still works
    assert call(users_backend, stub.GetMe, users_pb2.GetMeRequest(), fresh).user.id == user["id"]


def test_reads_see_every_change_through_the_cache(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    _, admin_token = users_backend.admin(tenant)
    gina, gina_token = member(users_backend, tenant, "gina")
    get = users_pb2.GetUserRequest(user_id=gina["id"])
    before = metrics_value(users_backend, "hit")
    assert call(users_backend, stub.GetUser, get, admin_token).user.first_name == "Gina"
    assert call(users_backend, stub.GetUser, get, admin_token).user.first_name == "Gina"
    assert metrics_value(users_backend, "hit") > before  # the second read came from Redis
    call(
        users_backend,
        stub.UpdateUser,
        users_pb2.UpdateUserRequest(user_id=gina["id"], first_name="Georgina"),
        gina_token,
    )
    assert call(users_backend, stub.GetUser, get, admin_token).user.first_name == "Georgina"
    call(users_backend, stub.DeleteUser, users_pb2.DeleteUserRequest(user_id=gina["id"]), admin_token)
    assert code_of(users_backend, stub.GetUser, get, admin_token) == Code.NOT_FOUND


def metrics_value(users_backend: UsersBackend, result: str) -> float:
    return users_backend.metric("portico_cache_requests_total", {"cache": "users", "result": result})


def test_a_change_of_roles_ends_the_users_sessions_at_once(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    _, admin_token = users_backend.admin(tenant)
    hank = users_backend.create_user(
        admin_token, email="hank@example.com", username="hank", roles=["admin", "user"]
    )
    hank_token = users_backend.token(hank)
    assert call(users_backend, stub.GetMe, users_pb2.GetMeRequest(), hank_token).user.id == hank["id"]
    demote = users_pb2.UpdateUserRequest(user_id=hank["id"], roles=["user"])
    assert call(users_backend, stub.UpdateUser, demote, admin_token).user.roles == ["user"]
    # His token still says admin: it stops working at once, so he cannot promote himself back.
    assert code_of(users_backend, stub.GetMe, users_pb2.GetMeRequest(), hank_token) == Code.UNAUTHENTICATED
    promote = users_pb2.UpdateUserRequest(user_id=hank["id"], roles=["admin", "user"])
    assert code_of(users_backend, stub.UpdateUser, promote, hank_token) == Code.UNAUTHENTICATED


def test_a_change_that_keeps_the_roles_keeps_the_sessions(
    users_backend: UsersBackend, stub: users_pb2_grpc.UserServiceStub, tenant: str
) -> None:
    _, admin_token = users_backend.admin(tenant)
    ivy = users_backend.create_user(
        admin_token, email="ivy@example.com", username="ivy", roles=["admin", "user"]
    )
    ivy_token = users_backend.token(ivy)
    for change in (
        users_pb2.UpdateUserRequest(user_id=ivy["id"], first_name="Ivy"),
        users_pb2.UpdateUserRequest(user_id=ivy["id"], roles=["user", "admin"], last_name="Ives"),
    ):
        call(users_backend, stub.UpdateUser, change, admin_token)
    assert call(users_backend, stub.GetMe, users_pb2.GetMeRequest(), ivy_token).user.last_name == "Ives"
