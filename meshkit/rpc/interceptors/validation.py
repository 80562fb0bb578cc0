"""Refuse a request that breaks the ``buf.validate`` rules of its proto, before any handler sees it.

The rules live in the request messages (``proto/*/v1/*.proto``), so the gateway's OpenAPI document and
every backend read them from one place. One :class:`protovalidate.Validator` serves every call: it
compiles each message type's rules once and keeps them. Violations become the contract's
``google.rpc.BadRequest``: one per field, named by its dotted path without list indexes (``roles``,
not ``roles[1]``), worded by :func:`describe`.

The rules see the request as sent. Fields a backend trims (names, titles, the search query) say so in
their patterns, which accept surrounding whitespace.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import cache
from typing import Any

import grpc
import protovalidate
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from meshkit.rpc.context import Context, metadata_value
from meshkit.rpc.interceptors.base import Stream, Unary, WrappingInterceptor
from meshkit.rpc.status import INVALID_REQUEST, FieldViolation, abort
from stubs.buf.validate import validate_pb2
from stubs.portico.gateway.v1 import options_pb2

log = logging.getLogger(__name__)

_VALIDATOR = protovalidate.Validator()


def request_violations(message: Message) -> list[FieldViolation]:
    """The problems of ``message`` by its rules, the first of each field only (none when it is valid).

    Raises protovalidate's ``CompilationError`` or ``EvaluationError`` when a rule cannot be run."""
    return check_request(message)[0]


def check_request(message: Message) -> tuple[list[FieldViolation], str]:
    """:func:`request_violations` and the status message to send with them: the seed's "Invalid user ID
    format" when a malformed id is the only problem, else "Invalid request"."""
    found: dict[str, str] = {}
    ids: set[str] = set()  # the fields refused only for not being a UUID
    for violation in _VALIDATOR.collect_violations(message):
        # Not violation.rule_value: it decodes the rule anew each time (~0.1 ms); the wording reads the
        # field's own rules instead, once per field and rule.
        proto = violation.proto
        elements = proto.field.elements if proto.field is not None else []
        path = ".".join(element.field_name for element in elements)
        if not path:
            path = _oneof_field(message) if proto.rule_id == "message.oneof" else proto.rule_id
        if path not in found:
            field = _field(message.DESCRIPTOR, elements)
            found[path] = describe(field, proto.rule_id) or str(proto.message)
            if proto.rule_id.startswith("string.uuid") and path.endswith("_id"):
                ids.add(path)
    if len(found) == 1 and ids == found.keys():
        return list(found.items()), f"Invalid {ids.pop().removesuffix('_id').replace('_', ' ')} ID format"
    return list(found.items()), INVALID_REQUEST


def _oneof_field(message: Message) -> str:
    """The field a broken message-level oneof rule is reported on: the first one it lists (a client reads
    a field name there, not a rule id)."""
    for rule in message.DESCRIPTOR.GetOptions().Extensions[validate_pb2.message].oneof:
        present = len([name for name in rule.fields if _is_set(message, name)])
        if present > 1 or (present == 0 and rule.required):
            return str(rule.fields[0])
    return "message.oneof"


def _is_set(message: Message, name: str) -> bool:
    field: Any = message.DESCRIPTOR.fields_by_name[name]
    if field.is_repeated:
        return len(getattr(message, field.name)) > 0
    if field.has_presence:
        return message.HasField(field.name)
    return bool(getattr(message, field.name) != field.default_value)


def _field(descriptor: Any, elements: Any) -> FieldDescriptor | None:
    """The field a violation's path ends at (None for a message-level rule)."""
    field: FieldDescriptor | None = None
    for element in elements:
        field = descriptor.fields_by_number.get(element.field_number) if descriptor is not None else None
        if field is None:
            return None
        descriptor = field.message_type
    return field


@cache
def describe(field: FieldDescriptor | None, rule_id: str) -> str | None:
    """How the details word a broken rule: the contract's wording where it has one, else from the
    rule's values; None leaves protovalidate's own message."""
    name = field.name if field is not None else ""
    if rule_id == "required":
        return "is required"
    # The proto's own words for a format (portico.gateway.v1.wording): the rule a pattern states, which
    # its regex does not say to a reader; for every broken rule when they state the whole rule.
    wording = _wording(field)
    format_rule = rule_id == "string.pattern" or rule_id.startswith("string.email")
    if wording.format and (format_rule or wording.whole):
        return wording.format
    if rule_id.startswith("string.uuid") and name.endswith("_id"):  # uuid_empty too
        what = name.removesuffix("_id").replace("_", " ")
        return f"must be {'an' if what[:1] in 'aeio' else 'a'} {what} id (UUID)"  # not 'an user'
    rules = _typed_rules(field, rule_id)
    if rules is None:
        return None
    if rule_id in ("string.min_len", "string.max_len"):
        if rules.HasField("min_len") and rules.HasField("max_len"):
            return f"must be {rules.min_len}-{rules.max_len} characters"
        if rule_id == "string.min_len":
            return f"must be at least {rules.min_len} characters"
        return f"must be at most {rules.max_len} characters"
    if rule_id.endswith(".gte_lte"):
        return f"must be between {rules.gte} and {rules.lte}"
    if rule_id.endswith(".gte"):
        return f"must be at least {rules.gte}"
    if rule_id.endswith(".lte"):
        return f"must be at most {rules.lte}"
    if rule_id.endswith(".in"):
        return f"must be one of: {', '.join(map(str, getattr(rules, 'in')))}"
    return None


def _wording(field: FieldDescriptor | None) -> options_pb2.Wording:
    if field is None:
        return options_pb2.Wording()
    return field.GetOptions().Extensions[options_pb2.wording]


def _typed_rules(field: FieldDescriptor | None, rule_id: str) -> Any:
    """The rules of ``field`` of the kind ``rule_id`` names (``string`` in ``string.min_len``), those of
    its items for a repeated field; None when it has none."""
    options = field.GetOptions() if field is not None else None
    if options is None or not options.HasExtension(validate_pb2.field):
        return None
    rules: Any = options.Extensions[validate_pb2.field]
    if rules.HasField("repeated") and rules.repeated.HasField("items"):
        rules = rules.repeated.items
    kind = rule_id.partition(".")[0]
    return getattr(rules, kind) if rules.WhichOneof("type") == kind else None


def has_rules(descriptor: Any, seen: frozenset[str] = frozenset()) -> bool:
    """Whether ``descriptor`` or a message it holds declares any rule: messages without skip the
    validator (GetMe, health checks), which then costs one dictionary look-up."""
    if descriptor.full_name in seen:
        return False
    seen = seen | {descriptor.full_name}
    if descriptor.GetOptions().HasExtension(validate_pb2.message):
        return True
    for oneof in descriptor.oneofs:
        if oneof.GetOptions().HasExtension(validate_pb2.oneof):
            return True
    for field in descriptor.fields:
        if field.GetOptions().HasExtension(validate_pb2.field):
            return True
        if field.message_type is not None and has_rules(field.message_type, seen):
            return True
    return False


class ValidationInterceptor(WrappingInterceptor):
    """INVALID_ARGUMENT with a ``BadRequest`` for a request its rules refuse; INTERNAL (logged) when the
    rules themselves cannot be run."""

    def __init__(self) -> None:
        self._checked: dict[type[Message], bool] = {}  # by request type: whether it has rules

    async def _check(self, request: Any, context: Context, method: str) -> None:
        if not isinstance(request, Message):
            return
        checked = self._checked.get(type(request))
        if checked is None:
            checked = self._checked[type(request)] = has_rules(request.DESCRIPTOR)
        if not checked:
            return
        try:
            problems, summary = check_request(request)
        except (protovalidate.CompilationError, protovalidate.EvaluationError):
            log.exception(
                "request validation failed",
                extra={"method": method, "request_id": metadata_value(context, "x-request-id")[:128]},
            )
            await abort(context, grpc.StatusCode.INTERNAL, "Internal error")
        if problems:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, summary, violations=problems)

    def wrap_unary(self, behavior: Unary, method: str) -> Unary:
        async def validated(request: Any, context: Context) -> Any:
            await self._check(request, context, method)
            return await behavior(request, context)

        return validated

    def wrap_stream(self, behavior: Stream, method: str) -> Stream:
        async def validated(request: Any, context: Context) -> AsyncIterator[Any]:
            await self._check(request, context, method)
            async for item in behavior(request, context):
                yield item

        return validated
