"""The route table built from the real Portico contract (stubs/portico.binpb), precedence, 404/405, and
conflicts reported instead of a table."""

from __future__ import annotations

import statistics
import time

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import ServiceDescriptor

from gateway.config import GatewaySettings
from gateway.routing.sources import load_descriptor_set, services_from_files
from gateway.routing.table import (
    Conflict,
    InvalidRule,
    Match,
    MethodNotAllowed,
    NoRoute,
    RouteTable,
    build_table,
)
from infra.paths import REPO_ROOT

DESCRIPTOR_SET = REPO_ROOT / "stubs" / "portico.binpb"


@pytest.fixture(scope="module")
def services() -> list[ServiceDescriptor]:
    return load_descriptor_set(DESCRIPTOR_SET)


@pytest.fixture(scope="module")
def table(services: list[ServiceDescriptor]) -> RouteTable:
    result = build_table(services, version=1)
    assert result.problems == ()
    assert result.table is not None
    return result.table


def matched(table: RouteTable, method: str, path: str) -> tuple[str, dict[str, str]]:
    found = table.match(method, path)
    assert isinstance(found, Match), found
    return found.route.grpc_method, found.params


@pytest.mark.parametrize(
    ("method", "path", "grpc_method", "params"),
    [
        ("GET", "/api/v1/users/search", "/users.v1.UserService/SearchUsers", {}),
        ("GET", "/api/v1/users/me", "/users.v1.UserService/GetMe", {}),
        ("GET", "/api/v1/users/abc", "/users.v1.UserService/GetUser", {"user_id": "abc"}),
        ("GET", "/api/v1/users", "/users.v1.UserService/ListUsers", {}),
        ("POST", "/api/v1/users", "/users.v1.UserService/CreateUser", {}),
        ("PUT", "/api/v1/users/abc", "/users.v1.UserService/UpdateUser", {"user_id": "abc"}),
        ("PATCH", "/api/v1/users/abc", "/users.v1.UserService/UpdateUser", {"user_id": "abc"}),
        # Only GET has the literal `me`; DELETE falls back to the variable, as in grpc-gateway.
        ("DELETE", "/api/v1/users/me", "/users.v1.UserService/DeleteUser", {"user_id": "me"}),
        ("GET", "/api/v1/posts/p%201/image", "/posts.v1.PostService/GetPostImage", {"post_id": "p 1"}),
        ("GET", "/api/v1/topics/t1/messages", "/broker.v1.MessageService/SubscribeToTopic", {"topic": "t1"}),
        ("POST", "/api/v1/topics/t1/messages", "/broker.v1.MessageService/PublishMessage", {"topic": "t1"}),
        ("GET", "/.well-known/jwks.json", "/auth.v1.AuthService/GetJwks", {}),
        # The seeds' dialects: `/users/` and `/users` are two paths; a literal `/users/` beats `{user_id}`.
        ("GET", "/users/", "/users.v1.UserService/ListUsers", {}),
        ("GET", "/users", "/users.v1.UserService/ListUsers", {}),
        ("PUT", "/users/", "/users.v1.UserService/UpdateUser", {}),
        ("PUT", "/users/abc", "/users.v1.UserService/UpdateUser", {"user_id": "abc"}),
        ("GET", "/auth/login", "/auth.v1.AuthService/Login", {}),
        ("POST", "/user/login/refresh", "/auth.v1.AuthService/Refresh", {}),
    ],
)
def test_routes_of_the_portico_contract(
    table: RouteTable, method: str, path: str, grpc_method: str, params: dict[str, str]
) -> None:
    assert matched(table, method, path) == (grpc_method, params)


def test_route_carries_rule_and_policy(table: RouteTable) -> None:
    found = table.match("PATCH", "/api/v1/users/abc")
    assert isinstance(found, Match)
    route = found.route
    assert (route.body, route.response_body, route.backend) == ("*", "user", "users.v1.UserService")
    assert route.input.full_name == "users.v1.UpdateUserRequest"
    assert route.output.full_name == "users.v1.UpdateUserResponse"
    assert route.policy.deadline_ms == 5000
    stream = table.match("GET", "/api/v1/topics/t1/messages")
    assert isinstance(stream, Match)
    assert stream.route.server_streaming
    assert not route.server_streaming


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/users", ("GET", "POST")),
        ("POST", "/api/v1/users/me", ("DELETE", "GET", "PATCH", "PUT")),
        ("GET", "/api/v1/auth/login", ("POST",)),
    ],
)
def test_method_not_allowed(table: RouteTable, method: str, path: str, allowed: tuple[str, ...]) -> None:
    assert table.match(method, path) == MethodNotAllowed(allowed)


@pytest.mark.parametrize(
    "path", ["/nope", "/api/v1/users/", "/api/v1/users/a/b", "/api/v1/users/a%2Fb", "/", "api/v1/users"]
)
def test_no_route(table: RouteTable, path: str) -> None:
    assert table.match("GET", path) == NoRoute()


# Called only between backends (no google.api.http rule): the users backend's CreateUser with a password.
INTERNAL_RPCS = ("/auth.v1.AuthService/CreateCredential",)


def test_every_rpc_of_the_contract_gets_a_route(services: list[ServiceDescriptor], table: RouteTable) -> None:
    rpcs = {f"/{s.full_name}/{m.name}" for s in services for m in s.methods}
    assert {r.grpc_method for r in table.routes} == rpcs - set(INTERNAL_RPCS)
    assert build_table(services).unrouted == INTERNAL_RPCS
    assert {s.full_name for s in services} == {
        "users.v1.UserService",
        "auth.v1.AuthService",
        "posts.v1.PostService",
        "broker.v1.MessageService",
    }


def _synthetic(package: str, rules: dict[str, str]) -> descriptor_pb2.FileDescriptorProto:
    """A file with one service whose RPCs (Empty in, Empty out) have GET rules on the given templates."""
    proto = descriptor_pb2.FileDescriptorProto(
        name=f"{package}/svc.proto",
        package=package,
        syntax="proto3",
        dependency=["google/api/annotations.proto"],
    )
    proto.message_type.add(name="Req").field.add(
        name="id", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    )
    service = proto.service.add(name="Svc")
    for name, template in rules.items():
        method = service.method.add(name=name, input_type=f".{package}.Req", output_type=f".{package}.Req")
        method.options.Extensions[annotations_pb2.http].get = template
    return proto


def _with_contract(*extra: descriptor_pb2.FileDescriptorProto) -> list[ServiceDescriptor]:
    files = list(descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file)
    return services_from_files([*files, *extra])


def test_conflicts_are_reported_and_no_table_is_built() -> None:
    services = _with_contract(
        _synthetic("one.v1", {"Get": "/api/v1/things/{id}"}),
        _synthetic("two.v1", {"Get": "/api/v1/things/{id}"}),
        # Another variable name for an existing route is the same path shape: still ambiguous.
        _synthetic("three.v1", {"Get": "/api/v1/users/{id}"}),
    )
    result = build_table(services)
    assert result.table is None
    assert set(result.problems) == {
        Conflict("GET", ("/api/v1/things/{id}",) * 2, ("/one.v1.Svc/Get", "/two.v1.Svc/Get")),
        Conflict(
            "GET",
            ("/api/v1/users/{user_id}", "/api/v1/users/{id}"),
            ("/users.v1.UserService/GetUser", "/three.v1.Svc/Get"),
        ),
    }
    assert "route conflict on GET" in str(result.problems[0])


def test_a_new_rpc_becomes_a_route(table: RouteTable) -> None:
    result = build_table(_with_contract(_synthetic("extra.v1", {"Get": "/api/v1/extras/{id}"})), version=2)
    assert result.table is not None
    assert result.table.keys() > table.keys()
    assert matched(result.table, "GET", "/api/v1/extras/x") == ("/extra.v1.Svc/Get", {"id": "x"})


def test_a_route_goes_to_the_upstream_that_serves_its_service() -> None:
    """Not to the package's first segment: `extra.v1` names no backend, users reflected it."""
    services = _with_contract(_synthetic("extra.v1", {"Get": "/api/v1/extras/{id}"}))
    served_by = {s.full_name: "posts" if s.full_name == "posts.v1.PostService" else "users" for s in services}
    result = build_table(services, served_by=served_by)
    assert result.table is not None
    upstreams = {r.grpc_method.split("/")[1]: r.upstream for r in result.table.routes}
    assert upstreams["extra.v1.Svc"] == upstreams["users.v1.UserService"] == "users"
    assert upstreams["posts.v1.PostService"] == "posts"


def test_the_descriptor_set_routes_go_to_the_backend_named_by_the_package(table: RouteTable) -> None:
    """Before any backend has answered reflection; every shipped service names a configured backend."""
    backends = set(GatewaySettings().upstream_targets())
    assert {r.upstream for r in table.routes} == backends
    assert all(r.backend.startswith(r.upstream + ".") for r in table.routes)


@pytest.mark.parametrize(
    ("template", "reason"),
    [("/api/v1/odd/{missing}", "has no field 'missing'"), ("/api/v1/{id=**}/x", "must be the last")],
)
def test_invalid_rules_are_reported(template: str, reason: str) -> None:
    result = build_table(_with_contract(_synthetic("bad.v1", {"Get": template})))
    assert result.table is None
    (problem,) = result.problems
    assert isinstance(problem, InvalidRule)
    assert problem.grpc_method == "/bad.v1.Svc/Get"
    assert reason in problem.reason


def test_match_speed(table: RouteTable) -> None:
    """Median time of one match over the real table; printed for the record, bounded loosely."""
    requests = [
        ("GET", "/api/v1/users/search"),
        ("GET", "/api/v1/users/abc"),
        ("PATCH", "/api/v1/users/abc"),
        ("GET", "/api/v1/posts/p1/image"),
        ("POST", "/api/v1/topics/t/messages"),
        ("DELETE", "/api/v1/users"),
        ("GET", "/nope"),
    ]
    samples = []
    for _ in range(2000):
        for method, path in requests:
            start = time.perf_counter_ns()
            table.match(method, path)
            samples.append(time.perf_counter_ns() - start)
    median_us = statistics.median(samples) / 1000
    print(f"median match time over {len(table.routes)} routes: {median_us:.2f} µs")
    assert median_us < 50
