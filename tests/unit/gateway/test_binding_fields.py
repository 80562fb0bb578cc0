"""Request fields a binding takes from the call: the caller's id and the X-Tenant-ID header."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.binding_fields import bind_call_fields
from gateway.inbound import Rejected
from gateway.routing.rules import Route
from gateway.routing.sources import load_descriptor_set
from gateway.routing.table import Match, build_table
from infra.paths import REPO_ROOT
from meshkit.auth.tokens import Principal
from stubs.auth.v1 import auth_pb2
from stubs.users.v1 import users_pb2

CALLER = Principal(
    sub="6f1c",
    tenant_id="t1",
    email="",
    roles=frozenset(),
    jti="j",
    issued_at=0,
    expires_at=0,
    token="x",  # noqa: S106
)


def _route(method: str, path: str) -> Route:
    table = build_table(load_descriptor_set(REPO_ROOT / "stubs" / "portico.binpb")).table
    assert table is not None
    found = table.match(method, path)
    assert isinstance(found, Match)
    return found.route


def test_the_caller_id_overrides_the_body() -> None:
    message = users_pb2.UpdateUserRequest(user_id="someone-else", first_name="Ivan")
    bind_call_fields(_route("PUT", "/users/"), message, CALLER, [])
    assert (message.user_id, message.first_name) == ("6f1c", "Ivan")
    untouched = users_pb2.UpdateUserRequest(user_id="someone-else")
    bind_call_fields(_route("PUT", "/users/abc"), untouched, CALLER, ["t1"])
    assert untouched.user_id == "someone-else"


def test_x_tenant_id_fills_an_empty_tenant() -> None:
    route = _route("POST", "/user/login")
    message = auth_pb2.LoginRequest(username="ann")
    bind_call_fields(route, message, None, [])
    assert message.tenant_id == ""  # the backend's default tenant
    bind_call_fields(route, message, None, ["acme"])
    assert message.tenant_id == "acme"
    bind_call_fields(route, message, None, ["acme"])  # the same tenant twice is no conflict
    # The canonical route reads the tenant from the body only, as before.
    canonical = auth_pb2.LoginRequest(username="ann")
    bind_call_fields(_route("POST", "/api/v1/auth/login"), canonical, None, ["acme"])
    assert canonical.tenant_id == ""


@pytest.mark.parametrize(
    ("body_tenant", "headers", "message"),
    [
        ("other", ["acme"], "X-Tenant-ID does not match tenant_id"),
        ("", ["a", "b"], "at most one X-Tenant-ID"),
    ],
)
def test_an_ambiguous_tenant_is_a_400(body_tenant: str, headers: list[str], message: str) -> None:
    with pytest.raises(Rejected, match=message) as refused:
        bind_call_fields(
            _route("POST", "/login"), auth_pb2.LoginRequest(tenant_id=body_tenant), None, headers
        )
    assert refused.value.status == 400


def test_a_route_without_call_fields_is_left_alone() -> None:
    route = dataclasses.replace(_route("POST", "/login"), tenant_header_field="")
    message = auth_pb2.LoginRequest()
    bind_call_fields(route, message, None, ["a", "b"])
    assert message.tenant_id == ""
