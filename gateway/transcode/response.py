"""Shaping a response message into the HTTP response the route policy describes.

JSON follows the proto3 JSON mapping with proto field names, every field present: fields without
presence show their defaults (``0``, ``""``, ``[]``), and unset fields with presence (``optional``
scalars, sub-messages) show ``null``, so a client sees the same keys whatever the values. Members of
a real ``oneof`` are the exception: only the set one appears, as the mapping prescribes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.transcode.fields import descriptor_of, is_map, is_repeated, map_value
from gateway.transcode.memo import memo_by_descriptor
from stubs.portico.gateway.v1 import options_pb2


@dataclass(frozen=True)
class JsonReply:
    """A success response: its HTTP status and the JSON value of its body."""

    status: int
    body: Any


@dataclass(frozen=True)
class BinaryReply:
    """A binary success response (``ResponseShape.binary``)."""

    status: int
    data: bytes
    content_type: str
    etag: str  # empty: none


def json_reply(
    message: Message, *, response_body: str = "", shape: options_pb2.ResponseShape | None = None
) -> JsonReply:
    """The success response of a JSON route: the payload, in ``{"data": …}`` unless the shape omits it.

    ``response_body`` is the http rule's field (top level, proto name) whose value is the payload;
    empty: the whole message. The shape may replace the payload with a fixed body, or pick and
    rename its members.
    """
    shape = shape or options_pb2.ResponseShape()
    if shape.fixed_body:
        # A few bytes, checked to be JSON when the route table was built; parsed per answer so no
        # caller can change a shared value.
        payload: Any = json.loads(shape.fixed_body)
    else:
        payload = to_json(message)
        if response_body:
            if response_body not in descriptor_of(message).fields_by_name:
                raise ValueError(
                    f"response_body {response_body!r} is not a field of {descriptor_of(message).full_name}"
                )
            payload = payload[response_body]
        if shape.members:
            payload = {member.name: payload[member.field or member.name] for member in shape.members}
    if shape.omit_envelope:
        # A raw answer is a document of its own standard (the JWKS is RFC 7517): absent members are
        # left out there, not written as null.
        return JsonReply(success_status(shape), _without_nulls(payload))
    return JsonReply(success_status(shape), {"data": payload})


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def binary_reply(message: Message, shape: options_pb2.ResponseShape) -> BinaryReply:
    """The success response of a binary route: the bytes and headers named by ``shape.binary``."""
    binary = shape.binary
    if not binary.data_field:
        raise ValueError("the route's response shape has no binary data field")
    content_type = getattr(message, binary.content_type_field) if binary.content_type_field else ""
    return BinaryReply(
        status=success_status(shape),
        data=getattr(message, binary.data_field),
        content_type=content_type or "application/octet-stream",
        etag=getattr(message, binary.etag_field) if binary.etag_field else "",
    )


def success_status(shape: options_pb2.ResponseShape | None) -> int:
    return (shape.success_status if shape is not None else 0) or 200


def to_json(message: Message) -> dict[str, Any]:
    """The message as JSON with proto names, every field present (see the module docstring)."""
    data = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    shaped: dict[str, Any] = _complete(message, data)
    return shaped


def _complete(message: Message, data: Any) -> Any:
    """``data`` with nulls for unset nullable fields, keys in field order, sub-messages likewise."""
    descriptor = descriptor_of(message)
    if descriptor.full_name.startswith("google.protobuf.") or not isinstance(data, dict):
        return data  # well-known types have their own JSON forms (a Timestamp is a string)
    nullable = _nullable_fields(descriptor)
    # Field order rather than MessageToDict's (which puts set fields with presence first), so every
    # object of a type reads the same way.
    shaped: dict[str, Any] = {}
    for field in descriptor.fields:
        if field.name in nullable and not message.HasField(field.name):
            shaped[field.name] = None
        elif field.name in data:
            value = data[field.name]
            if field.message_type is not None:
                value = _complete_nested(getattr(message, field.name), field, value)
            shaped[field.name] = value
    return shaped


def _complete_nested(value: Any, field: FieldDescriptor, data: Any) -> Any:
    if is_map(field):
        if map_value(field).message_type is None:
            return data
        # MessageToDict turns every map key into a string; match them the same way.
        return {_map_key(key): _complete(item, data[_map_key(key)]) for key, item in value.items()}
    if is_repeated(field):
        return [_complete(item, item_data) for item, item_data in zip(value, data, strict=True)]
    return _complete(value, data)


def _map_key(key: object) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


# Per message type, not per descriptor: a refreshed route table must free its descriptor pool.
@memo_by_descriptor
def _nullable_fields(descriptor: Descriptor) -> frozenset[str]:
    """Fields shown as null when unset: proto3 ``optional`` scalars and singular messages."""
    proto = descriptor_pb2.DescriptorProto()
    descriptor.CopyToProto(proto)
    # Only the descriptor proto tells a synthetic oneof (of a proto3 `optional`) from a real one.
    synthetic = {f.name for f in proto.field if f.proto3_optional}
    names = set(synthetic)
    for field in descriptor.fields:
        in_real_oneof = field.containing_oneof is not None and field.name not in synthetic
        if field.message_type is not None and not is_repeated(field) and not in_real_oneof:
            names.add(field.name)
    return frozenset(names)
