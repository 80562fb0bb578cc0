"""Pydantic models (hence JSON Schemas) of protobuf messages, built by walking their descriptors.

Used to describe event payloads in the AsyncAPI document without a hand-written copy of the fields.
Descriptions come from the ``.proto`` comments kept in the descriptor set that ``scripts/gen_protos.py``
writes (``stubs/portico.binpb``). Field names are the ``.proto`` names; scalar types follow protobuf's
JSON mapping (64-bit integers and bytes as strings, ``Timestamp`` as an RFC 3339 date-time).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from pydantic import BaseModel, Field, create_model

__all__ = ["MessageModels", "proto_comments"]

DESCRIPTOR_SET = Path(__file__).resolve().parents[2] / "stubs" / "portico.binpb"

_SCALARS: dict[int, tuple[Any, dict[str, Any]]] = {
    FieldDescriptor.TYPE_STRING: (str, {}),
    FieldDescriptor.TYPE_BOOL: (bool, {}),
    FieldDescriptor.TYPE_DOUBLE: (float, {}),
    FieldDescriptor.TYPE_FLOAT: (float, {}),
    **{t: (int, {}) for t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32)},
    **{t: (int, {}) for t in (FieldDescriptor.TYPE_SFIXED32, FieldDescriptor.TYPE_UINT32)},
    FieldDescriptor.TYPE_FIXED32: (int, {}),
    # The JSON mapping writes 64-bit integers as strings (JavaScript numbers lose precision).
    **{
        t: (str, {"pattern": r"^-?[0-9]+$"})
        for t in (
            FieldDescriptor.TYPE_INT64,
            FieldDescriptor.TYPE_SINT64,
            FieldDescriptor.TYPE_SFIXED64,
            FieldDescriptor.TYPE_UINT64,
            FieldDescriptor.TYPE_FIXED64,
        )
    },
    FieldDescriptor.TYPE_BYTES: (str, {"contentEncoding": "base64"}),
}
_WELL_KNOWN: dict[str, Any] = {"google.protobuf.Timestamp": datetime}

FieldFilter = Callable[[FieldDescriptor], bool]


@cache
def proto_comments(path: Path = DESCRIPTOR_SET) -> Mapping[str, str]:
    """Leading comments of messages and fields by full name (``events.v1.Event.event_id``); empty if the
    descriptor set is missing."""
    if not path.is_file():
        return {}
    comments: dict[str, str] = {}
    for file in descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()).file:
        names: dict[tuple[int, ...], str] = {}
        for m, message in enumerate(file.message_type):
            full = f"{file.package}.{message.name}"
            names[(4, m)] = full  # 4: FileDescriptorProto.message_type, 2: DescriptorProto.field
            for f, field in enumerate(message.field):
                names[(4, m, 2, f)] = f"{full}.{field.name}"
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            if name and location.leading_comments.strip():
                comments[name] = " ".join(location.leading_comments.split())
    return comments


class MessageModels:
    """Builds one model per message type, shared where messages nest (so schemas are defined once)."""

    def __init__(self, comments: Mapping[str, str] | None = None) -> None:
        self._comments = proto_comments() if comments is None else comments
        self._models: dict[str, type[BaseModel]] = {}
        self._building: set[str] = set()

    def model(
        self,
        descriptor: Descriptor,
        *,
        name: str | None = None,
        keep: FieldFilter | None = None,
        extra: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> type[BaseModel]:
        """The model of ``descriptor``; ``name``/``keep``/``extra`` make a narrowed variant of it (fields
        kept by ``keep``, ``extra`` JSON Schema keywords per field), e.g. one event type per channel."""
        key = name or descriptor.full_name
        if key in self._models:
            return self._models[key]
        self._building.add(key)
        try:
            fields: dict[str, Any] = {
                field.name: self._field(descriptor, field, (extra or {}).get(field.name, {}))
                for field in descriptor.fields
                if keep is None or keep(field)
            }
        finally:
            self._building.discard(key)
        model: type[BaseModel] = create_model(
            key, __doc__=self._comments.get(descriptor.full_name, descriptor.full_name), **fields
        )
        self._models[key] = model
        return model

    def _field(self, owner: Descriptor, field: FieldDescriptor, extra: Mapping[str, Any]) -> tuple[Any, Any]:
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            value, keywords = self._type(entry.fields_by_name["value"])
            annotation: Any = dict[str, value]  # type: ignore[valid-type]
            target = "additionalProperties"
        else:
            annotation, keywords = self._type(field)
            target = "items" if field.is_repeated else ""
            if field.is_repeated:
                annotation = list[annotation]

        def finish(schema: dict[str, Any]) -> None:
            # Every proto3 field may be absent (read as its zero value): no default, no "required".
            schema.pop("default", None)
            (schema[target] if target else schema).update(keywords)  # enum, pattern: on the values
            schema.update(extra)

        description = self._comments.get(f"{owner.full_name}.{field.name}")
        return annotation, Field(
            default=None, title=field.name, description=description, json_schema_extra=finish
        )

    def _type(self, field: FieldDescriptor) -> tuple[Any, dict[str, Any]]:
        if field.enum_type is not None:
            return str, {"enum": [value.name for value in field.enum_type.values]}
        if (message := field.message_type) is not None:
            if message.full_name in _WELL_KNOWN:
                return _WELL_KNOWN[message.full_name], {}
            if message.full_name in self._building:
                return Any, {}  # a recursive message (google.protobuf.Struct): left unconstrained
            return self.model(message), {}
        return _SCALARS[field.type]
