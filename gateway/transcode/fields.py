"""Field lookup by proto or JSON name, and typed parsing of text values (path and query parameters)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.transcode.violations import TranscodeError

_INT = re.compile(r"-?[0-9]+")
# proto3 JSON numbers, plus its spellings of the special values; Python's float() alone would also
# take "1_0", " 1" or "infinity", which no other transcoder accepts.
_FLOAT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FLOAT_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_FLOAT32_MAX = 3.4028234663852886e38
_BOOLS = {"true": True, "false": False, "1": True, "0": False}

_T = FieldDescriptor
_INT_RANGES: dict[int, tuple[int, int]] = {
    _T.TYPE_INT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _T.TYPE_UINT32: (0, 2**32 - 1),
    _T.TYPE_FIXED32: (0, 2**32 - 1),
    _T.TYPE_INT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _T.TYPE_UINT64: (0, 2**64 - 1),
    _T.TYPE_FIXED64: (0, 2**64 - 1),
}

# Well-known message types that have a one-string JSON form, so a path or query value can set them.
TEXT_WKTS = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"})
_WRAPPERS = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)


def descriptor_of(message: Message) -> Descriptor:
    """The message's descriptor, typed as the pure-Python class (the stubs also allow upb's twin)."""
    return cast(Descriptor, message.DESCRIPTOR)


def field_named(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    """The field called ``name`` by its proto name or its lowerCamel JSON name."""
    field = descriptor.fields_by_name.get(name)
    if field is not None:
        return field
    return next((f for f in descriptor.fields if f.json_name == name), None)


def is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def map_value(field: FieldDescriptor) -> FieldDescriptor:
    """The ``value`` field of a map field's entry type."""
    entry = field.message_type
    if entry is None:
        raise ValueError(f"{field.full_name} is not a map")
    return entry.fields_by_name["value"]


def is_repeated(field: FieldDescriptor) -> bool:
    # `is_repeated` (protobuf ≥ 6) replaces `label`, which newer releases deprecate.
    return field.is_repeated


def expected(field: FieldDescriptor) -> str:
    """What a valid value of the field looks like, for error descriptions."""
    if field.enum_type is not None:
        names = ", ".join(v.name for v in field.enum_type.values)
        return f"must be one of: {names}"
    nested = field.message_type
    if nested is not None:
        full = nested.full_name
        if full == "google.protobuf.Timestamp":
            return "must be an RFC 3339 timestamp"
        if full == "google.protobuf.Duration":
            return 'must be a duration in seconds, e.g. "1.5s"'
        if full in _WRAPPERS:
            return expected(nested.fields_by_name["value"])
        return "must be an object"
    if field.type in _INT_RANGES:
        low, high = _INT_RANGES[field.type]
        return f"must be an integer from {low} to {high}"
    if field.type in (_T.TYPE_FLOAT, _T.TYPE_DOUBLE):
        return "must be a number"
    if field.type == _T.TYPE_BOOL:
        return "must be true or false"
    if field.type == _T.TYPE_BYTES:
        return "must be base64"
    return "must be a string"


def set_from_text(message: Message, field: FieldDescriptor, text: str, where: str) -> None:
    """Set (or, for a repeated field, append) ``text`` parsed as the field's type.

    ``where`` is the parameter name the client used; it names the field in the error.
    """
    if field.message_type is not None:
        _set_message_from_text(message, field, field.message_type, text, where)
        return
    value = parse_scalar(field, text, where)
    if is_repeated(field):
        getattr(message, field.name).append(value)
    else:
        setattr(message, field.name, value)


def _set_message_from_text(
    message: Message, field: FieldDescriptor, nested: Descriptor, text: str, where: str
) -> None:
    full = nested.full_name
    if is_repeated(field) or (full not in TEXT_WKTS and full not in _WRAPPERS):
        raise TranscodeError("Invalid request parameters", [(where, "cannot be set from a URL parameter")])
    target = getattr(message, field.name)
    if full in _WRAPPERS:
        set_from_text(target, nested.fields_by_name["value"], text, where)
        return
    try:
        json_format.Parse(json.dumps(text), target)
    except json_format.ParseError:
        raise TranscodeError("Invalid request parameters", [(where, expected(field))]) from None


def parse_scalar(field: FieldDescriptor, text: str, where: str) -> object:
    """``text`` as a Python value of the scalar or enum field ``field``; TranscodeError when it is not one."""
    value = _parse_scalar(field, text)
    if value is None:
        raise TranscodeError("Invalid request parameters", [(where, expected(field))])
    return value


def _parse_scalar(field: FieldDescriptor, text: str) -> object | None:
    if field.enum_type is not None:
        # By name only: numbers would tie clients to the wire encoding of the enum.
        value = field.enum_type.values_by_name.get(text)
        return None if value is None else value.number
    if field.type in _INT_RANGES:
        if not _INT.fullmatch(text):
            return None
        number = int(text)
        low, high = _INT_RANGES[field.type]
        return number if low <= number <= high else None
    if field.type in (_T.TYPE_FLOAT, _T.TYPE_DOUBLE):
        return _parse_float(field, text)
    if field.type == _T.TYPE_BOOL:
        return _BOOLS.get(text.lower())
    if field.type == _T.TYPE_BYTES:
        return _parse_bytes(text)
    return text


def _parse_float(field: FieldDescriptor, text: str) -> float | None:
    if text in _FLOAT_SPECIAL:
        return _FLOAT_SPECIAL[text]
    if not _FLOAT.fullmatch(text):
        return None
    number = float(text)
    if math.isinf(number) or (field.type == _T.TYPE_FLOAT and abs(number) > _FLOAT32_MAX):
        return None  # a finite literal that overflows is a client mistake, not infinity
    return number


def _parse_bytes(text: str) -> bytes | None:
    # proto3 JSON accepts standard and URL-safe base64, padded or not.
    padded = text + "=" * (-len(text) % 4)
    alphabet = b"-_" if ("-" in text or "_" in text) else b"+/"
    try:
        return base64.b64decode(padded, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError):
        return None
