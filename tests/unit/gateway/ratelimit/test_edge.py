"""Which limits a request is charged against, and their keys: the login key is the account auth looks up,
and no key grows with what the client sends."""

from __future__ import annotations

import pytest

from gateway.config import GatewaySettings
from gateway.ratelimit.edge import EdgeLimits
from meshkit.auth.tokens import Principal
from stubs.auth.v1 import auth_pb2
from stubs.portico.gateway.v1 import options_pb2
from stubs.users.v1 import users_pb2

# The Login RPC's own route policy, as the gateway reads it: the key_fields the proto declares.
LOGIN_POLICY: options_pb2.RoutePolicy = (
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
    .methods_by_name["Login"]
    .GetOptions()
    .Extensions[options_pb2.route]
)
KEY_BOUND = 130  # "login:{…}:" + two parts of at most 64: far below what a client can send


def _keys(
    request: auth_pb2.LoginRequest, ip: str = "10.0.0.1", principal: Principal | None = None
) -> dict[str, str]:
    keyed = EdgeLimits(GatewaySettings()).for_request(LOGIN_POLICY, ip, principal, request)
    return {limit.name: key for limit, key in keyed}


def _login_key(tenant_id: str = "", username: str = "", email: str = "") -> str:
    return _keys(auth_pb2.LoginRequest(tenant_id=tenant_id, username=username, email=email))["login"]


def test_the_login_route_declares_tenant_then_username_then_email() -> None:
    assert LOGIN_POLICY.rate_limit.limit_class == options_pb2.RATE_LIMIT_CLASS_LOGIN
    assert list(LOGIN_POLICY.rate_limit.key_fields) == ["tenant_id", "username", "email"]


@pytest.mark.parametrize(
    ("username", "email"),
    [
        (" bob", ""),
        ("bob\t", ""),
        ("BOB", ""),
        ("bob", "junk@example.com"),  # auth ignores the email when a username is given
        ("bob", "other-junk@example.com"),
    ],
)
def test_every_spelling_of_one_account_spends_one_login_budget(username: str, email: str) -> None:
    assert _login_key("acme", username, email) == _login_key("acme", "bob") == "login:{acme}:bob"


def test_the_email_keys_the_login_when_no_username_is_given() -> None:
    assert _login_key("acme", "", "Bob@Example.com") == _login_key("acme", "  ", " bob@example.com")
    assert _login_key("acme", "", "bob@example.com") == "login:{acme}:bob@example.com"


def test_the_tenant_is_the_default_one_when_empty() -> None:
    assert _login_key("", "bob") == _login_key("default", "bob") == "login:{default}:bob"
    assert _login_key("acme", "bob") != _login_key("other", "bob")


def test_no_key_grows_with_what_the_client_sends() -> None:
    huge = "a" * 256 * 1024
    keys = _keys(auth_pb2.LoginRequest(tenant_id=huge, username=huge), ip="fe80::1%" + huge)
    assert max(len(key) for key in keys.values()) <= KEY_BOUND
    assert _login_key("acme", huge) != _login_key("acme", huge + "b")  # still one key per account


def test_the_user_limit_key_is_bounded_too() -> None:
    principal = Principal("s" * 10_000, "t" * 10_000, "", frozenset(), "j", 0.0, 0.0, "token")
    keys = _keys(auth_pb2.LoginRequest(username="bob"), principal=principal)
    assert len(keys["user"]) <= KEY_BOUND


def test_a_login_class_without_key_fields_is_keyed_by_client_ip() -> None:
    policy = options_pb2.RoutePolicy()
    policy.rate_limit.limit_class = options_pb2.RATE_LIMIT_CLASS_LOGIN
    keyed = EdgeLimits(GatewaySettings()).for_request(policy, "10.0.0.1", None, auth_pb2.LoginRequest())
    assert {limit.name: key for limit, key in keyed}["login"] == "login-by-ip:{10.0.0.1}"


def _policy_of(descriptor: object, service: str, method: str) -> options_pb2.RoutePolicy:
    options = descriptor.services_by_name[service].methods_by_name[method].GetOptions()  # type: ignore[attr-defined]
    policy: options_pb2.RoutePolicy = options.Extensions[options_pb2.route]
    return policy


@pytest.mark.parametrize(
    ("descriptor", "service", "method", "limit_class"),
    [
        (auth_pb2.DESCRIPTOR, "AuthService", "Register", "signup"),
        (auth_pb2.DESCRIPTOR, "AuthService", "ChangePassword", "password"),
        (auth_pb2.DESCRIPTOR, "AuthService", "ResetPassword", "password"),
        (users_pb2.DESCRIPTOR, "UserService", "SearchUsers", "search"),
    ],
)
def test_the_routes_declare_their_class(
    descriptor: object, service: str, method: str, limit_class: str
) -> None:
    policy = _policy_of(descriptor, service, method)
    anonymous = EdgeLimits(GatewaySettings()).for_request(policy, "10.0.0.9", None, auth_pb2.LoginRequest())
    assert {limit.name: key for limit, key in anonymous}[limit_class] == f"{limit_class}:ip:{{10.0.0.9}}"


def test_a_class_limit_is_keyed_by_the_caller_and_configured_by_its_setting() -> None:
    policy = _policy_of(users_pb2.DESCRIPTOR, "UserService", "SearchUsers")
    principal = Principal("u1", "t1", "", frozenset(), "j", 0.0, 0.0, "token")
    settings = GatewaySettings(PORTICO_GATEWAY_RATE_LIMIT_SEARCH="7/second")
    keyed = dict(
        (limit.name, (limit, key))
        for limit, key in EdgeLimits(settings).for_request(
            policy, "10.0.0.9", principal, users_pb2.SearchUsersRequest()
        )
    )
    limit, key = keyed["search"]
    assert key == "search:user:{t1}:u1"  # one budget per user, wherever they call from
    assert (limit.count, limit.period) == (7, 1)
    assert set(keyed) == {"ip", "user", "search"}


def test_a_route_without_a_class_has_only_the_ip_and_user_limits() -> None:
    principal = Principal("u1", "t1", "", frozenset(), "j", 0.0, 0.0, "token")
    policy = _policy_of(users_pb2.DESCRIPTOR, "UserService", "GetUser")
    keyed = EdgeLimits(GatewaySettings()).for_request(
        policy, "10.0.0.9", principal, users_pb2.GetUserRequest()
    )
    assert {limit.name for limit, _ in keyed} == {"ip", "user"}
