"""An RPC's `google.api.http` rule and `(portico.gateway.v1.route)` policy, read into Route values.

One Route per binding: the rule itself and each of its `additional_bindings`, all sharing the RPC's
policy (options.proto says the policy applies to every binding), except that a binding the policy's
`bindings` names answers with that entry's response shape (a seed's dialect: same RPC, its own shape).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor

from gateway.routing.template import PathTemplate, TemplateError, parse_template
from stubs.portico.gateway.v1 import options_pb2

_PATTERNS = ("get", "put", "post", "delete", "patch")


class RuleError(ValueError):
    """An http rule that cannot become a route (bad template, unknown field, nested bindings)."""

    def __init__(self, grpc_method: str, reason: str) -> None:
        super().__init__(f"{grpc_method}: {reason}")
        self.grpc_method = grpc_method
        self.reason = reason


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class Route:
    """One REST route: an HTTP method and path template bound to one RPC of one backend."""

    http_method: str
    template: str
    matcher: PathTemplate
    # "" no body, "*" the whole request message, otherwise the request field the body fills.
    body: str
    # "" the whole response message, otherwise the response field that is the payload.
    response_body: str
    grpc_method: str  # "/users.v1.UserService/GetUser", what a grpc.aio channel calls
    input: Descriptor
    output: Descriptor
    server_streaming: bool
    client_streaming: bool
    policy: options_pb2.RoutePolicy
    backend: str  # full name of the service, e.g. "users.v1.UserService"
    # The upstream (gateway/upstreams.py's channel name, e.g. "users") whose server reflected the
    # service: where the call goes, whatever the service's package is called.
    upstream: str = ""
    # Non-empty for a compatibility path of another API (`BindingPolicy.dialect`, e.g. "seed-001"): it
    # is served, but the OpenAPI document, which describes Portico's own API, leaves it out.
    dialect: str = ""
    # Request fields set to the caller's user id (`BindingPolicy.caller_id_fields`), e.g. `user_id`.
    caller_id_fields: tuple[str, ...] = ()
    # The request field filled from `X-Tenant-ID` when empty (`BindingPolicy.tenant_header_field`).
    tenant_header_field: str = ""

    def key(self) -> tuple[str, str, str, str, str, str, str, str, str, bytes]:
        """A value that compares routes across tables (descriptor objects differ per pool)."""
        return (
            self.http_method,
            self.template,
            self.grpc_method,
            self.body,
            self.response_body,
            self.upstream,
            self.dialect,
            ",".join(self.caller_id_fields),
            self.tenant_header_field,
            self.policy.SerializeToString(deterministic=True),
        )


def routes_for_method(method: MethodDescriptor, upstream: str = "") -> list[Route]:
    """The routes of one RPC, served by ``upstream``; empty when it has no http rule. Raises RuleError
    for a bad rule."""
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return []
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    policy = options_pb2.RoutePolicy()
    if options.HasExtension(options_pb2.route):
        policy.CopyFrom(options.Extensions[options_pb2.route])
    grpc_method = f"/{method.containing_service.full_name}/{method.name}"
    per_binding = _binding_policies(grpc_method, policy)
    shared = options_pb2.RoutePolicy()
    shared.CopyFrom(policy)
    shared.ClearField("bindings")  # each route carries only the shape it answers with
    routes = [_route(method, grpc_method, rule, shared, upstream, per_binding)]
    for binding in rule.additional_bindings:
        if binding.additional_bindings:
            # http.proto: additional bindings "must not contain an additional_bindings field themselves".
            raise RuleError(grpc_method, "an additional binding has its own additional_bindings")
        routes.append(_route(method, grpc_method, binding, shared, upstream, per_binding))
    unknown = per_binding.keys() - {(route.http_method, route.template) for route in routes}
    if unknown:
        named = ", ".join(sorted(f"{m} {t}" for m, t in unknown))
        raise RuleError(grpc_method, f"the policy's bindings name no binding of the rule: {named}")
    return routes


def _binding_policies(
    grpc_method: str, policy: options_pb2.RoutePolicy
) -> dict[tuple[str, str], options_pb2.BindingPolicy]:
    """The policy's per-binding entries by (HTTP method, template), each checked once per table."""
    found: dict[tuple[str, str], options_pb2.BindingPolicy] = {}
    for entry in policy.bindings:
        http_method, _, template = entry.binding.partition(" ")
        key = (http_method.upper(), template)
        if not template or key in found:
            raise RuleError(grpc_method, f"bad or repeated policy binding {entry.binding!r}")
        _check_shape(grpc_method, entry.response)
        found[key] = entry
    return found


def _check_shape(grpc_method: str, shape: options_pb2.ResponseShape) -> None:
    if shape.fixed_body:
        try:
            json.loads(shape.fixed_body)
        except ValueError as error:
            raise RuleError(grpc_method, f"fixed_body is not JSON: {error}") from error


def _route(
    method: MethodDescriptor,
    grpc_method: str,
    rule: http_pb2.HttpRule,
    policy: options_pb2.RoutePolicy,
    upstream: str,
    per_binding: dict[tuple[str, str], options_pb2.BindingPolicy],
) -> Route:
    http_method, template = _pattern(grpc_method, rule)
    dialect = ""
    caller_id_fields: tuple[str, ...] = ()
    tenant_header_field = ""
    if entry := per_binding.get((http_method, template)):
        policy = _with_shape(policy, entry.response)
        dialect, caller_id_fields = entry.dialect, tuple(entry.caller_id_fields)
        tenant_header_field = entry.tenant_header_field
        _check_caller_id_fields(grpc_method, method.input_type, policy, caller_id_fields)
        if tenant_header_field:
            _check_string_field(grpc_method, method.input_type, tenant_header_field, "tenant_header_field")
    try:
        matcher = parse_template(template)
    except TemplateError as error:
        raise RuleError(grpc_method, str(error)) from error
    # Checked here, once per table, so a typo in a .proto is a reported build problem rather than a
    # request-time failure.
    for field_path in matcher.field_paths:
        _check_field_path(grpc_method, method.input_type, field_path)
    if rule.body not in ("", "*"):
        _check_field_path(grpc_method, method.input_type, rule.body)
    if rule.response_body:
        _check_field_path(grpc_method, method.output_type, rule.response_body)
    _check_members(grpc_method, method.output_type, rule.response_body, policy.response)
    return Route(
        http_method=http_method,
        template=template,
        matcher=matcher,
        body=rule.body,
        response_body=rule.response_body,
        grpc_method=grpc_method,
        input=method.input_type,
        output=method.output_type,
        server_streaming=method.server_streaming,
        client_streaming=method.client_streaming,
        policy=policy,
        backend=method.containing_service.full_name,
        upstream=upstream,
        dialect=dialect,
        caller_id_fields=caller_id_fields,
        tenant_header_field=tenant_header_field,
    )


def _with_shape(policy: options_pb2.RoutePolicy, shape: options_pb2.ResponseShape) -> options_pb2.RoutePolicy:
    shaped = options_pb2.RoutePolicy()
    shaped.CopyFrom(policy)
    shaped.response.CopyFrom(shape)
    return shaped


def _check_caller_id_fields(
    grpc_method: str, request: Descriptor, policy: options_pb2.RoutePolicy, names: tuple[str, ...]
) -> None:
    if names and policy.access == options_pb2.ACCESS_PUBLIC:
        raise RuleError(grpc_method, "caller_id_fields on a public binding: there is no caller")
    for name in names:
        _check_string_field(grpc_method, request, name, "caller_id_fields")


def _check_string_field(grpc_method: str, request: Descriptor, name: str, option: str) -> None:
    field = request.fields_by_name.get(name)
    if field is None or field.type != FieldDescriptor.TYPE_STRING or field.is_repeated:
        raise RuleError(grpc_method, f"{option}: {name!r} is not a string field of the request")


def _check_members(
    grpc_method: str, output: Descriptor, response_body: str, shape: options_pb2.ResponseShape
) -> None:
    """Each member names a field of the payload (the response_body field's message, or the response)."""
    if not shape.members:
        return
    payload: Descriptor | None = output
    if response_body:
        payload = output.fields_by_name[response_body].message_type
    for member in shape.members:
        field = member.field or member.name
        if payload is None or field not in payload.fields_by_name:
            raise RuleError(
                grpc_method, f"response member {member.name!r}: the payload has no field {field!r}"
            )


def _pattern(grpc_method: str, rule: http_pb2.HttpRule) -> tuple[str, str]:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise RuleError(grpc_method, "http rule has no pattern (get, put, post, delete, patch, custom)")
    if kind == "custom":
        if not rule.custom.kind or not rule.custom.path:
            raise RuleError(grpc_method, "custom pattern needs kind and path")
        return rule.custom.kind.upper(), rule.custom.path
    assert kind in _PATTERNS
    return kind.upper(), str(getattr(rule, kind))


def _check_field_path(grpc_method: str, message: Descriptor, field_path: str) -> None:
    current: Descriptor | None = message
    for name in field_path.split("."):
        field = current.fields_by_name.get(name) if current is not None else None
        if field is None:
            raise RuleError(grpc_method, f"{message.full_name} has no field {field_path!r}")
        current = field.message_type if field.type == FieldDescriptor.TYPE_MESSAGE else None
