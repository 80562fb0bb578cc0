"""The mesh zone: a caller that reaches a backend's gRPC port directly, past the gateway. Each backend
verifies the token again, keeps to the token's tenant and roles, and believes nothing the caller says
about itself (its client address)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import jwt
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness.forgery import Forger
from harness.kafka import read_topic
from harness.mesh import Mesh
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc
from stubs.broker.v1 import broker_pb2, broker_pb2_grpc
from stubs.events.v1 import events_pb2
from stubs.posts.v1 import posts_pb2, posts_pb2_grpc
from stubs.users.v1 import users_pb2, users_pb2_grpc
from tests.security.people import Person, bearer, fresh_tenant, sign_up

pytestmark = pytest.mark.infra
Metadata = tuple[tuple[str, str], ...]
Channels = dict[str, grpc.Channel]
Call = Callable[[Channels, Metadata], Any]


@pytest.fixture(scope="module")
def channels(mesh: Mesh) -> Iterator[Channels]:
    """One plaintext channel per backend, straight to its gRPC port (what `make up` listens on)."""
    opened = {name: grpc.insecure_channel(mesh.target(name)) for name in ("users", "auth", "posts", "broker")}
    yield opened
    for channel in opened.values():
        channel.close()


def _metadata(token: str) -> Metadata:
    return (("authorization", bearer(token)["Authorization"]),)


def refused(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    """The status a call ended with; fails the test when it succeeded."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    assert isinstance(error, grpc.Call)
    return error.code(), error.details() or ""


def _users(c: Channels) -> users_pb2_grpc.UserServiceStub:
    return users_pb2_grpc.UserServiceStub(c["users"])


CALLS: dict[str, Call] = {
    "users.GetMe": lambda c, md: _users(c).GetMe(users_pb2.GetMeRequest(), metadata=md, timeout=10),
    "users.ListUsers": lambda c, md: _users(c).ListUsers(
        users_pb2.ListUsersRequest(), metadata=md, timeout=10
    ),
    "posts.ListPosts": lambda c, md: posts_pb2_grpc.PostServiceStub(c["posts"]).ListPosts(
        posts_pb2.ListPostsRequest(), metadata=md, timeout=10
    ),
    "broker.PublishMessage": lambda c, md: broker_pb2_grpc.MessageServiceStub(c["broker"]).PublishMessage(
        broker_pb2.PublishMessageRequest(topic="direct", message="m"), metadata=md, timeout=10
    ),
    "auth.Logout": lambda c, md: auth_pb2_grpc.AuthServiceStub(c["auth"]).Logout(
        auth_pb2.LogoutRequest(), metadata=md, timeout=10
    ),
}


@pytest.fixture(scope="module")
def person(mesh: Mesh) -> Person:
    with httpx.Client(base_url=mesh.gateway_url, timeout=30) as client:
        return sign_up(client)


@pytest.mark.parametrize("rpc", list(CALLS))
def test_every_backend_wants_a_token(channels: Channels, rpc: str) -> None:
    assert refused(lambda: CALLS[rpc](channels, ())) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "missing bearer token",
    )


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _alg_none(person: Person, forger: Forger) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{person.access_token.split('.')[1]}."


def _tampered_roles(person: Person, forger: Forger) -> str:
    header, _, signature = person.access_token.split(".")
    claims = jwt.decode(person.access_token, options={"verify_signature": False})
    return f"{header}.{_b64({**claims, 'roles': ['admin', 'service']})}.{signature}"


BAD_TOKENS: dict[str, Callable[[Person, Forger], str]] = {
    "alg-none": _alg_none,
    "tampered-roles": _tampered_roles,
    "wrong-audience": lambda p, f: f.forge(p.access_token, aud="someone-else"),
    "exp-as-string": lambda p, f: f.forge(p.access_token, exp="9999999999"),  # finding 7, past the edge
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
@pytest.mark.parametrize("rpc", ["users.GetMe", "posts.ListPosts"])
def test_a_backend_verifies_the_token_itself(
    channels: Channels, forger: Forger, person: Person, case: str, rpc: str
) -> None:
    token = BAD_TOKENS[case](person, forger)
    answer = refused(lambda: CALLS[rpc](channels, _metadata(token)))
    assert answer == (grpc.StatusCode.UNAUTHENTICATED, "invalid or expired token")


def test_a_logged_out_token_is_refused_by_every_backend(mesh: Mesh, channels: Channels) -> None:
    with httpx.Client(base_url=mesh.gateway_url, timeout=30) as client:
        user = sign_up(client)
        assert client.post("/api/v1/auth/logout", json={}, headers=user.auth).status_code == 200
    for rpc in ("users.GetMe", "posts.ListPosts", "broker.PublishMessage"):
        answer = refused(lambda rpc=rpc: CALLS[rpc](channels, _metadata(user.access_token)))
        assert answer == (grpc.StatusCode.UNAUTHENTICATED, "token has been revoked"), rpc


def test_two_authorization_entries_are_refused_not_picked(channels: Channels, person: Person) -> None:
    """As at the edge: two credentials are ambiguous (a proxy may read the other one)."""
    metadata = (*_metadata(person.access_token), ("authorization", "Bearer someone-elses"))
    code, _ = refused(lambda: CALLS["users.GetMe"](channels, metadata))
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_a_backend_keeps_to_the_tokens_tenant_and_roles(channels: Channels, person: Person) -> None:
    stub, metadata = _users(channels), _metadata(person.access_token)
    other_tenant = users_pb2.GetUserRequest(user_id=person.user_id, tenant_id=fresh_tenant())
    assert refused(lambda: stub.GetUser(other_tenant, metadata=metadata, timeout=10)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "The tenant does not match the token",
    )
    create = users_pb2.CreateUserRequest(username="direct-admin", email="da@example.com", roles=["admin"])
    assert refused(lambda: stub.CreateUser(create, metadata=metadata, timeout=10)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "Only admins can create users",
    )
    promote = users_pb2.UpdateUserRequest(user_id=person.user_id, roles=["admin"])
    assert refused(lambda: stub.UpdateUser(promote, metadata=metadata, timeout=10)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "Only admins can change roles",
    )


def test_health_is_open_and_says_nothing_else(channels: Channels) -> None:
    """Health answers without a token (probes have none), as documented; it tells only the status."""
    for channel in channels.values():
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply == health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def test_a_direct_caller_cannot_choose_its_client_address(
    mesh: Mesh, channels: Channels, mesh_redis: redis.Redis
) -> None:
    """Finding 5: a direct gRPC caller's failed login is counted against its peer address, not against
    the address its ``x-client-ip`` metadata names (which only the gateway may forward)."""
    tenant, claimed = fresh_tenant(), "203.0.113.55"
    login = auth_pb2.LoginRequest(tenant_id=tenant, username="nobody", password="wrong-Password-1")  # noqa: S106 (a wrong test password)
    stub = auth_pb2_grpc.AuthServiceStub(channels["auth"])
    code, _ = refused(lambda: stub.Login(login, metadata=(("x-client-ip", claimed),), timeout=15))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert mesh_redis.exists(f"portico:auth:fail:ip:{claimed}") == 0
    [audit] = await read_topic(
        mesh.env["PORTICO_KAFKA_BOOTSTRAP"],
        "portico.auth.v1",
        lambda event: event.tenant_id == tenant and event.type == "login.failed",
        want=1,
    )
    assert isinstance(audit, events_pb2.Event)
    assert audit.actor.client_ip == "127.0.0.1"  # the peer: this test's own connection
