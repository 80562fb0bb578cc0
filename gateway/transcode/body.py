"""Binding a decoded JSON body onto a message, with per-field errors instead of parser messages.

``json_format.ParseDict`` stops at the first problem and its message names protobuf types and lists
every field of the message; neither belongs in a client's error. So the body is first walked against
the descriptor: every unknown or doubly given key and every value of the wrong type becomes one
(field, description) pair, named by the path the client wrote (``items[2].name``). Only a body that
passes is handed to ParseDict, which then does the actual conversion.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from gateway.transcode.fields import descriptor_of, expected, field_named, is_map, is_repeated, map_value
from gateway.transcode.violations import FieldViolation, TranscodeError

INVALID_BODY = "Invalid request body"
UNKNOWN_FIELD = "unknown field"


def bind_object(body: object, message: Message) -> None:
    """Merge the JSON object ``body`` into ``message``; TranscodeError listing every bad field."""
    if not isinstance(body, dict):
        raise TranscodeError("Request body must be a JSON object")
    violations: list[FieldViolation] = []
    check_object(body, descriptor_of(message), "", violations)
    if violations:
        raise TranscodeError(INVALID_BODY, violations)
    try:
        json_format.ParseDict(body, message, ignore_unknown_fields=False)
    except json_format.ParseError:
        # The walk above should leave nothing for ParseDict to refuse; should it still, its text names
        # protobuf types and is not for clients.
        raise TranscodeError(INVALID_BODY, [("", "invalid value")]) from None


def check_object(
    body: dict[Any, Any], descriptor: Descriptor, prefix: str, out: list[FieldViolation]
) -> None:
    seen: dict[str, str] = {}  # proto name → the key the client used
    chosen: dict[str, str] = {}  # oneof name → the key of its member the client set
    for key, value in body.items():
        where = f"{prefix}{key}"
        field = field_named(descriptor, key) if isinstance(key, str) else None
        if field is None:
            out.append((where, UNKNOWN_FIELD))
            continue
        if field.name in seen:
            out.append((where, f"given twice (also as {seen[field.name]!r})"))
            continue
        seen[field.name] = key
        oneof = field.containing_oneof
        if oneof is not None and value is not None:
            if oneof.name in chosen:
                out.append((where, f"cannot be set together with {chosen[oneof.name]!r}"))
                continue
            chosen[oneof.name] = key
        check_value(value, descriptor, field, where, out)


def check_value(
    value: object, parent: Descriptor, field: FieldDescriptor, where: str, out: list[FieldViolation]
) -> None:
    if value is None:
        return  # JSON null means "not set" for every field type
    nested = _plain_message(field)
    if is_map(field):
        if not isinstance(value, dict):
            out.append((where, "must be an object"))
            return
        value_type = _plain_message(map_value(field))
        if value_type is not None:
            for key, item in value.items():
                _check_nested(item, value_type, f"{where}[{key}]", out)
            return
    elif is_repeated(field) and nested is not None:
        if not isinstance(value, list):
            out.append((where, "must be an array"))
            return
        for index, item in enumerate(value):
            _check_nested(item, nested, f"{where}[{index}]", out)
        return
    elif nested is not None:
        _check_nested(value, nested, where, out)
        return
    # A scalar, enum, well-known type, repeated scalar or map of scalars: let ParseDict judge it on its
    # own, in a scratch message, so the verdict is pinned to this one field.
    try:
        json_format.ParseDict({field.name: value}, GetMessageClass(parent)(), ignore_unknown_fields=False)
    except json_format.ParseError:
        out.append((where, _describe(field, value)))


def _check_nested(value: object, descriptor: Descriptor, where: str, out: list[FieldViolation]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        out.append((where, "must be an object"))
        return
    check_object(value, descriptor, f"{where}.", out)


def _plain_message(field: FieldDescriptor) -> Descriptor | None:
    """The field's message type when the body gives it as a JSON object of its fields."""
    message = field.message_type
    if message is None or message.GetOptions().map_entry or message.full_name.startswith("google.protobuf."):
        return None  # well-known types have their own JSON forms; ParseDict checks them
    return message


def _describe(field: FieldDescriptor, value: object) -> str:
    if is_repeated(field) and not is_map(field) and not isinstance(value, list):
        return "must be an array"
    if is_map(field):
        return "must be an object of " + expected(map_value(field)).removeprefix("must be ")
    description = expected(field)
    if is_repeated(field):
        return "every item " + description
    return description
