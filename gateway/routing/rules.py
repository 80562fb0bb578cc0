"""An RPC's `google.api.http` rule and `(portico.gateway.v1.route)` policy, read into Route values.

One Route per binding: the rule itself and each of its `additional_bindings`, all sharing the RPC's
policy (options.proto says the policy applies to every binding).
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True, eq=False)
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

    def key(self) -> tuple[str, str, str, str, str, bytes]:
        """A value that compares routes across tables (descriptor objects differ per pool)."""
        return (
            self.http_method,
            self.template,
            self.grpc_method,
            self.body,
            self.response_body,
            self.policy.SerializeToString(deterministic=True),
        )


def routes_for_method(method: MethodDescriptor) -> list[Route]:
    """The routes of one RPC; empty when it has no http rule. Raises RuleError for a bad rule."""
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return []
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    policy = options_pb2.RoutePolicy()
    if options.HasExtension(options_pb2.route):
        policy.CopyFrom(options.Extensions[options_pb2.route])
    grpc_method = f"/{method.containing_service.full_name}/{method.name}"
    routes = [_route(method, grpc_method, rule, policy)]
    for binding in rule.additional_bindings:
        if binding.additional_bindings:
            # http.proto: additional bindings "must not contain an additional_bindings field themselves".
            raise RuleError(grpc_method, "an additional binding has its own additional_bindings")
        routes.append(_route(method, grpc_method, binding, policy))
    return routes


def _route(
    method: MethodDescriptor, grpc_method: str, rule: http_pb2.HttpRule, policy: options_pb2.RoutePolicy
) -> Route:
    http_method, template = _pattern(grpc_method, rule)
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
