"""Message descriptors → JSON Schema (2020-12, as OpenAPI 3.1 uses it), per the proto3 JSON mapping.

Two readings of one message, because the gateway is strict in one direction and generous in the other:

- output (responses): what `gateway/transcode/response.py` writes — every field without presence is
  always there (so it is `required`), fields with presence (proto3 ``optional``, sub-messages) are
  ``null`` when unset, members of a real ``oneof`` appear only when set, 64-bit integers are strings.
- input (request bodies): what `gateway/transcode/body.py` accepts — nothing is required, ``null``
  means "not set" for every field, 64-bit integers as numbers or strings, unknown keys refused.

Messages become `components/schemas` entries referenced by ``$ref``; a message used in both
directions gets a second entry named ``<full name>.Input``.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.openapi.comments import Comments
from gateway.openapi.constraints import (
    Rules,
    cel_notes,
    examples,
    field_rules,
    is_required,
    item_rules,
    key_schema,
    merge,
    message_keywords,
    message_notes,
    single_schema,
    unless_zero,
    value_schema,
)
from gateway.transcode.fields import is_map, is_repeated, map_value
from gateway.transcode.memo import memo_by_descriptor

Schema = dict[str, Any]
_T = FieldDescriptor

_INT32 = {
    _T.TYPE_INT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _T.TYPE_UINT32: (0, 2**32 - 1),
    _T.TYPE_FIXED32: (0, 2**32 - 1),
}
_INT64 = {
    _T.TYPE_INT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _T.TYPE_UINT64: (0, 2**64 - 1),
    _T.TYPE_FIXED64: (0, 2**64 - 1),
}
_SIGNED_DIGITS = "^-?[0-9]+$"
_FLOAT_SPECIALS = ["NaN", "Infinity", "-Infinity"]
WRAPPERS = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)


class Direction(Enum):
    INPUT = "input"
    OUTPUT = "output"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or null: a type list when the schema has a plain type, else ``anyOf``."""
    kind = schema.get("type")
    if isinstance(kind, str) and "$ref" not in schema:
        return {**schema, "type": [kind, "null"]}
    if set(schema) == {"anyOf"}:
        return {"anyOf": [*schema["anyOf"], {"type": "null"}]}
    return {"anyOf": [schema, {"type": "null"}]}


class SchemaBuilder:
    """Collects the component schemas of the messages it is asked about."""

    def __init__(self, comments: Comments, outputs: Iterable[Descriptor] = ()) -> None:
        self.comments = comments
        self.components: dict[str, Schema] = {}
        # Messages reachable from a response: those get the plain name, their input twin ".Input".
        self._output_names = _reachable(outputs)

    def message_ref(self, message: Descriptor, direction: Direction) -> Schema:
        """A ``$ref`` to the message's component (built on first use) or, for well-known types, inline."""
        wkt = _well_known(message, direction)
        if wkt is not None:
            return wkt
        name = message.full_name
        if direction is Direction.INPUT and name in self._output_names:
            name += ".Input"
        if name not in self.components:
            self.components[name] = {}  # reserved first, so recursive messages terminate
            self.components[name] = self.object_schema(message, direction)
        return ref(name)

    def object_schema(self, message: Descriptor, direction: Direction, without: Iterable[str] = ()) -> Schema:
        """The message as a JSON object schema, leaving out the top-level fields in ``without``."""
        skip = set(without)
        fields = [f for f in message.fields if f.name not in skip]
        properties = {f.name: self.field_schema(f, direction) for f in fields}
        schema: Schema = {"type": "object", "properties": properties}
        description = self._describe(message.full_name, _oneof_note(message, skip))
        if description:
            schema["description"] = description
        if direction is Direction.OUTPUT:
            required = [
                f.name for f in fields if f.name not in _nullable_fields(message) and not _in_oneof(f)
            ]
            if required:
                schema["required"] = required
        else:
            schema["additionalProperties"] = False
            required = [f.name for f in fields if is_required(f, field_rules(f))]
            if required:
                schema["required"] = required
            schema.update(message_keywords(message, (f.name for f in fields)))
            notes = " ".join(message_notes(message))
            if notes:
                schema["description"] = "\n\n".join(
                    filter(None, [schema.get("description"), f"Also: {notes}"])
                )
        return schema

    def members_schema(self, message: Descriptor, members: Iterable[tuple[str, str]]) -> Schema:
        """A response payload shaped by a route's members: ``(key, field)`` pairs picked (and renamed)
        from the message's fields, as gateway/transcode/response.py writes them."""
        picked = [(key, message.fields_by_name[field]) for key, field in members]
        schema: Schema = {
            "type": "object",
            "properties": {key: self.field_schema(f, Direction.OUTPUT) for key, f in picked},
        }
        required = [key for key, f in picked if f.name not in _nullable_fields(message) and not _in_oneof(f)]
        if required:
            schema["required"] = required
        description = self._describe(message.full_name, "")
        if description:
            schema["description"] = description
        return schema

    def field_schema(self, field: FieldDescriptor, direction: Direction) -> Schema:
        """The JSON value of one field, with its comment as the description; a request field also
        with its protovalidate rules (constraints.py), a response field as the backend wrote it."""
        rules = field_rules(field) if direction is Direction.INPUT else None
        items = item_rules(field, rules)
        if is_map(field):
            value = map_value(field)
            schema: Schema = {"type": "object", "additionalProperties": self._single(value, direction, items)}
            key = field.message_type.fields_by_name["key"] if field.message_type else None
            if key is not None and key.type not in (_T.TYPE_STRING, _T.TYPE_BOOL):
                schema["propertyNames"] = {"pattern": _SIGNED_DIGITS}
            elif key_schema(rules):
                schema["propertyNames"] = key_schema(rules)
            schema.update(value_schema(field, rules))
        elif is_repeated(field):
            schema = {"type": "array", "items": self._single(field, direction, items)}
            schema.update(value_schema(field, rules))
        else:
            schema = self._single(field, direction, rules)
            if direction is Direction.OUTPUT and field.name in _nullable_fields(_owner(field)):
                schema = nullable(schema)
        if direction is Direction.INPUT:
            schema = unless_zero(schema, field, rules)
            if not is_required(field, rules):
                schema = nullable(schema)  # the transcoder reads JSON null as "not set" for every field
        notes = " ".join(cel_notes(rules))
        description = self._describe(field.full_name, f"Also: {notes}" if notes else "")
        if description:
            schema = {**schema, "description": description}  # 3.1 allows siblings of $ref
        if examples(rules):
            schema["examples"] = examples(rules)
        if field.GetOptions().deprecated:
            schema["deprecated"] = True
        return schema

    def _single(self, field: FieldDescriptor, direction: Direction, rules: Rules | None = None) -> Schema:
        """One value of the field (an item, for repeated fields), with the rules of that value."""
        if field.message_type is not None:
            return self.message_ref(field.message_type, direction)
        base = scalar_schema(field, direction)
        return merge(base, single_schema(rules, field)) if rules is not None else base

    def _describe(self, full_name: str, note: str) -> str:
        return "\n\n".join(part for part in (self.comments.get(full_name, ""), note) if part)


def scalar_schema(field: FieldDescriptor, direction: Direction) -> Schema:
    """A scalar or enum field's JSON value (proto3 JSON mapping)."""
    if field.enum_type is not None:
        if field.enum_type.full_name == "google.protobuf.NullValue":
            return {"type": "null"}
        return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
    if field.type in _INT32:
        low, high = _INT32[field.type]
        return {
            "type": "integer",
            "format": "int32" if low < 0 else "uint32",
            "minimum": low,
            "maximum": high,
        }
    if field.type in _INT64:
        low, high = _INT64[field.type]
        text: Schema = {
            "type": "string",
            "pattern": _SIGNED_DIGITS,
            "format": "int64" if low < 0 else "uint64",
        }
        if direction is Direction.OUTPUT:
            return text  # json_format writes 64-bit integers as decimal strings
        return {"anyOf": [{"type": "integer", "minimum": low, "maximum": high}, text]}
    if field.type in (_T.TYPE_FLOAT, _T.TYPE_DOUBLE):
        number = {"type": "number", "format": "float" if field.type == _T.TYPE_FLOAT else "double"}
        return {"anyOf": [number, {"type": "string", "enum": _FLOAT_SPECIALS}]}
    if field.type == _T.TYPE_BOOL:
        return {"type": "boolean"}
    if field.type == _T.TYPE_BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    return {"type": "string"}


def _well_known(message: Descriptor, direction: Direction) -> Schema | None:
    """The JSON form of a google.protobuf well-known type, or None for any other message."""
    name = message.full_name
    if not name.startswith("google.protobuf."):
        return None
    if name in WRAPPERS:
        return scalar_schema(message.fields_by_name["value"], direction)
    forms: dict[str, Schema] = {
        "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
        "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
        "google.protobuf.FieldMask": {
            "type": "string",
            "description": "Comma-separated lowerCamel field paths",
        },
        "google.protobuf.Struct": {"type": "object"},
        "google.protobuf.ListValue": {"type": "array"},
        "google.protobuf.Value": {},
        "google.protobuf.Empty": {"type": "object", "maxProperties": 0},
        "google.protobuf.Any": {
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "required": ["@type"],
        },
    }
    return dict(forms.get(name, {"type": "object"}))


@memo_by_descriptor
def _synthetic(message: Descriptor) -> frozenset[str]:
    """proto3 ``optional`` fields: only the descriptor proto tells their oneof from a real one."""
    proto = descriptor_pb2.DescriptorProto()
    message.CopyToProto(proto)
    return frozenset(f.name for f in proto.field if f.proto3_optional)


@memo_by_descriptor
def _nullable_fields(message: Descriptor) -> frozenset[str]:
    """Fields with presence outside a real oneof: written as null when unset (see response.py)."""
    synthetic = _synthetic(message)
    names = set(synthetic)
    for field in message.fields:
        real_oneof = field.containing_oneof is not None and field.name not in synthetic
        if field.message_type is not None and not is_repeated(field) and not real_oneof:
            names.add(field.name)
    return frozenset(names)


def _owner(field: FieldDescriptor) -> Descriptor:
    """The message a field belongs to (typed optional by protobuf for extensions, never None here)."""
    owner = field.containing_type
    if owner is None:
        raise ValueError(f"{field.full_name} belongs to no message")
    return owner


def _in_oneof(field: FieldDescriptor) -> bool:
    return field.containing_oneof is not None and field.name not in _synthetic(_owner(field))


def _oneof_note(message: Descriptor, skip: set[str]) -> str:
    """A sentence per real oneof: at most one of its members may be set (and appears)."""
    notes = []
    for oneof in message.oneofs:
        members = [f.name for f in oneof.fields if f.name not in skip and f.name not in _synthetic(message)]
        if members:
            listed = ", ".join(f"`{m}`" for m in members)
            notes.append(f"One of ({oneof.name}): at most one of {listed} is set.")
    return " ".join(notes)


def _reachable(messages: Iterable[Descriptor]) -> frozenset[str]:
    """Full names of the messages reachable from ``messages`` through their fields."""
    seen: set[str] = set()
    stack = list(messages)
    while stack:
        message = stack.pop()
        if message.full_name in seen:
            continue
        seen.add(message.full_name)
        stack.extend(f.message_type for f in message.fields if f.message_type is not None)
    return frozenset(seen)
