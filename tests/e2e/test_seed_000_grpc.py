"""Seed 000 (a gRPC API) as its clients call it, straight to the backends over gRPC: CreateUser with a
password answers `id` and `status`, GetUser takes `id` and answers `status`, Login answers `token` and
`status`, Logout takes the `token` in the message (no metadata), and a published message comes back on
the subscription — the same RPCs Portico's own clients call."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import httpx
import pytest

from harness.accounts import PASSWORD
from harness.auth import ADMIN_PASSWORD
from harness.mesh import Mesh
from harness.processes import wait_until
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc
from stubs.broker.v1 import broker_pb2, broker_pb2_grpc
from stubs.users.v1 import users_pb2, users_pb2_grpc

pytestmark = pytest.mark.infra
TIMEOUT = 15.0


@pytest.fixture
def channels(mesh: Mesh) -> Iterator[dict[str, grpc.Channel]]:
    opened = {name: grpc.insecure_channel(mesh.target(name)) for name in ("users", "auth", "broker")}
    try:
        yield opened
    finally:
        for channel in opened.values():
            channel.close()


def _login(
    auth: auth_pb2_grpc.AuthServiceStub, username: str, password: str
) -> auth_pb2.LoginResponse | None:
    try:
        reply: auth_pb2.LoginResponse = auth.Login(
            auth_pb2.LoginRequest(username=username, password=password), timeout=TIMEOUT
        )
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            return None
        raise
    return reply


@pytest.fixture
def admin_token(channels: dict[str, grpc.Channel]) -> str:
    """The bootstrap admin's access token, logged in over gRPC as seed 000's client logs in."""
    auth = auth_pb2_grpc.AuthServiceStub(channels["auth"])
    wait_until(lambda: _login(auth, "admin", ADMIN_PASSWORD) is not None, 30, "the bootstrap admin")
    login = _login(auth, "admin", ADMIN_PASSWORD)
    assert login is not None
    return login.token


def _bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def test_seed_000s_user_and_authentication_flow_over_grpc(
    channels: dict[str, grpc.Channel], admin_token: str
) -> None:
    users = users_pb2_grpc.UserServiceStub(channels["users"])
    auth = auth_pb2_grpc.AuthServiceStub(channels["auth"])
    username = f"s0{uuid.uuid4().hex[:8]}"

    created = users.CreateUser(
        users_pb2.CreateUserRequest(username=username, email=f"{username}@example.com", password=PASSWORD),
        metadata=_bearer(admin_token),
        timeout=TIMEOUT,
    )
    assert (created.id, created.status) == (created.user.id, "created")

    got = users.GetUser(
        users_pb2.GetUserRequest(id=created.id), metadata=_bearer(admin_token), timeout=TIMEOUT
    )
    assert (got.user.username, got.user.email, got.status) == (username, f"{username}@example.com", "active")

    # The user the admin created logs in with the password given at creation.
    login = _login(auth, username, PASSWORD)
    assert login is not None
    assert (login.token, login.status) == (login.access_token, "authenticated")
    assert _login(auth, username, "not-the-password") is None

    me = users.GetMe(users_pb2.GetMeRequest(), metadata=_bearer(login.token), timeout=TIMEOUT)
    assert me.user.id == created.id

    # Logout with the token in the message only, as seed 000's LogoutRequest carries it.
    out = auth.Logout(auth_pb2.LogoutRequest(token=login.token), timeout=TIMEOUT)
    assert out.status == "logout successful"
    with pytest.raises(grpc.RpcError) as ended:
        users.GetMe(users_pb2.GetMeRequest(), metadata=_bearer(login.token), timeout=TIMEOUT)
    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_logout_whose_message_and_metadata_name_different_tokens_is_refused(
    channels: dict[str, grpc.Channel], admin_token: str
) -> None:
    auth = auth_pb2_grpc.AuthServiceStub(channels["auth"])
    users = users_pb2_grpc.UserServiceStub(channels["users"])
    other = _login(auth, "admin", ADMIN_PASSWORD)
    assert other is not None
    with pytest.raises(grpc.RpcError) as refused:
        auth.Logout(auth_pb2.LogoutRequest(token=other.token), metadata=_bearer(admin_token), timeout=TIMEOUT)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # Neither login was ended by the refused call.
    for token in (admin_token, other.token):
        users.GetMe(users_pb2.GetMeRequest(), metadata=_bearer(token), timeout=TIMEOUT)


def test_get_user_names_one_id_field_only(channels: dict[str, grpc.Channel], admin_token: str) -> None:
    users = users_pb2_grpc.UserServiceStub(channels["users"])
    some = str(uuid.uuid4())
    with pytest.raises(grpc.RpcError) as both:
        users.GetUser(
            users_pb2.GetUserRequest(user_id=some, id=some), metadata=_bearer(admin_token), timeout=TIMEOUT
        )
    assert both.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_seed_000s_message_service_over_grpc(channels: dict[str, grpc.Channel], admin_token: str) -> None:
    broker = broker_pb2_grpc.MessageServiceStub(channels["broker"])
    topic = f"s0-{uuid.uuid4().hex[:8]}"
    published = broker.PublishMessage(
        broker_pb2.PublishMessageRequest(topic=topic, message="hello from seed 000"),
        metadata=_bearer(admin_token),
        timeout=TIMEOUT,
    )
    assert published.status == "published"
    stream = broker.SubscribeToTopic(
        broker_pb2.SubscribeToTopicRequest(topic=topic, **{"from": "earliest"}),
        metadata=_bearer(admin_token),
        timeout=TIMEOUT,
    )
    try:
        first = next(iter(stream))
    finally:
        stream.cancel()  # type: ignore[no-untyped-call]
    assert (first.message, first.offset) == ("hello from seed 000", published.offset)


def test_rest_clients_see_none_of_the_grpc_only_fields(mesh: Mesh) -> None:
    with httpx.Client(base_url=mesh.gateway_url, timeout=TIMEOUT) as client:
        wait_until(
            lambda: (
                client.post(
                    "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
                ).status_code
                == 200
            ),
            30,
            "the bootstrap admin",
        )
        login = client.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        data = login.json()["data"]
        assert set(data) == {
            "access_token",
            "refresh_token",
            "token_type",
            "expires_in",
            "password_change_required",
        }
        me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {data['access_token']}"})
        one = client.get(
            f"/api/v1/users/{me.json()['data']['id']}",
            headers={"Authorization": f"Bearer {data['access_token']}"},
        )
        assert one.status_code == 200, one.text
        assert "status" not in one.json()["data"]
