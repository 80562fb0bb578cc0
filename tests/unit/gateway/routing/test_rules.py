"""Per-binding policies: a binding the RPC's policy names answers with its own response shape (a seed's
dialect), the others keep the RPC's; a policy entry that cannot apply is a reported rule problem."""

from __future__ import annotations

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from gateway.routing.rules import Route
from gateway.routing.sources import load_descriptor_set, services_from_files
from gateway.routing.table import InvalidRule, Match, build_table
from infra.paths import REPO_ROOT
from stubs.portico.gateway.v1 import options_pb2

DESCRIPTOR_SET = REPO_ROOT / "stubs" / "portico.binpb"


def _contract_route(method: str, path: str) -> Route:
    table = build_table(load_descriptor_set(DESCRIPTOR_SET)).table
    assert table is not None
    found = table.match(method, path)
    assert isinstance(found, Match), found
    return found.route


def test_a_named_binding_gets_its_own_shape_and_the_rpcs_other_bindings_keep_theirs() -> None:
    canonical = _contract_route("POST", "/api/v1/auth/register")
    seed = _contract_route("POST", "/user/register")
    assert canonical.grpc_method == seed.grpc_method == "/auth.v1.AuthService/Register"
    assert (canonical.dialect, seed.dialect) == ("", "seed-001")
    assert canonical.policy.response == options_pb2.ResponseShape(success_status=201)
    assert seed.policy.response.omit_envelope
    assert seed.policy.response.error_style == options_pb2.ERROR_STYLE_DETAIL
    assert seed.policy.response.error_messages["CONFLICT"] == "User with these credentials already exists"
    # Everything but the shape is the RPC's, and no route carries the per-binding list itself.
    assert seed.policy.access == canonical.policy.access == options_pb2.ACCESS_PUBLIC
    assert seed.policy.deadline_ms == canonical.policy.deadline_ms
    assert not seed.policy.bindings
    assert not canonical.policy.bindings
    assert seed.key() != canonical.key()


def test_the_login_limit_applies_to_the_dialect_login_too() -> None:
    assert _contract_route("POST", "/user/login").policy.rate_limit == (
        _contract_route("POST", "/api/v1/auth/login").policy.rate_limit
    )


def _file(
    binding: str,
    shape: options_pb2.ResponseShape,
    caller_id_fields: tuple[str, ...],
    access: options_pb2.Access.ValueType,
) -> descriptor_pb2.FileDescriptorProto:
    """One RPC with GET /api/v1/things/{id} plus GET /things/{id}, and one policy entry."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="things/v1/svc.proto",
        package="things.v1",
        syntax="proto3",
        dependency=["google/api/annotations.proto", "portico/gateway/v1/options.proto"],
    )
    proto.message_type.add(name="Req").field.add(
        name="id", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    )
    method = proto.service.add(name="Svc").method.add(
        name="Get", input_type=".things.v1.Req", output_type=".things.v1.Req"
    )
    rule = method.options.Extensions[annotations_pb2.http]
    rule.get = "/api/v1/things/{id}"
    rule.additional_bindings.add(get="/things/{id}")
    entry = method.options.Extensions[options_pb2.route].bindings.add(binding=binding, response=shape)
    entry.caller_id_fields.extend(caller_id_fields)
    method.options.Extensions[options_pb2.route].access = access
    return proto


def _build(
    binding: str,
    shape: options_pb2.ResponseShape,
    caller_id_fields: tuple[str, ...] = (),
    access: options_pb2.Access.ValueType = options_pb2.ACCESS_AUTHENTICATED,
) -> InvalidRule | list[Route]:
    files = list(descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file)
    result = build_table(services_from_files([*files, _file(binding, shape, caller_id_fields, access)]))
    if result.table is None:
        (problem,) = result.problems
        assert isinstance(problem, InvalidRule)
        return problem
    return [r for r in result.table.routes if r.grpc_method == "/things.v1.Svc/Get"]


def test_a_synthetic_binding_policy_applies_to_its_binding_only() -> None:
    routes = _build(
        "GET /things/{id}", options_pb2.ResponseShape(members=[options_pb2.Member(name="key", field="id")])
    )
    assert isinstance(routes, list)
    shapes = {r.template: r.policy.response for r in routes}
    assert shapes["/things/{id}"].members[0].field == "id"
    assert shapes["/api/v1/things/{id}"] == options_pb2.ResponseShape()


@pytest.mark.parametrize(
    ("binding", "shape", "reason"),
    [
        ("POST /things/{id}", options_pb2.ResponseShape(), "name no binding of the rule: POST /things/{id}"),
        ("GET /things/{other}", options_pb2.ResponseShape(), "name no binding"),
        ("/things/{id}", options_pb2.ResponseShape(), "bad or repeated policy binding"),
        ("GET /things/{id}", options_pb2.ResponseShape(fixed_body="{not json"), "fixed_body is not JSON"),
        (
            "GET /things/{id}",
            options_pb2.ResponseShape(members=[options_pb2.Member(name="token")]),
            "the payload has no field 'token'",
        ),
    ],
)
def test_a_policy_entry_that_cannot_apply_is_reported(
    binding: str, shape: options_pb2.ResponseShape, reason: str
) -> None:
    problem = _build(binding, shape)
    assert isinstance(problem, InvalidRule)
    assert problem.grpc_method == "/things.v1.Svc/Get"
    assert reason in problem.reason


def test_caller_id_fields_bind_a_string_field_of_an_authenticated_binding() -> None:
    routes = _build("GET /things/{id}", options_pb2.ResponseShape(), ("id",))
    assert isinstance(routes, list)
    assert {r.template: r.caller_id_fields for r in routes} == {
        "/api/v1/things/{id}": (),
        "/things/{id}": ("id",),
    }
    unknown = _build("GET /things/{id}", options_pb2.ResponseShape(), ("owner",))
    assert isinstance(unknown, InvalidRule)
    assert "'owner' is not a string field" in unknown.reason
    public = _build("GET /things/{id}", options_pb2.ResponseShape(), ("id",), options_pb2.ACCESS_PUBLIC)
    assert isinstance(public, InvalidRule)
    assert "public binding" in public.reason


def test_put_users_slash_acts_on_the_caller() -> None:
    assert _contract_route("PUT", "/users/").caller_id_fields == ("user_id",)
    assert _contract_route("PUT", "/users/abc").caller_id_fields == ()
