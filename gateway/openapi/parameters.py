"""Path and query parameters of a route, as `gateway/transcode/request.py` binds them.

Path: each template variable is one parameter named by its field path (``{user_id}``, ``{a.b}``); a
variable over several segments (``{name=shelves/*/books/**}``) is one string that may contain ``/``;
a bare ``*``/``**`` outside a variable binds nothing and is named ``wildcard<n>``.
Query: every field the path and body leave free, nested ones dotted (``a.b``), repeated ones by
repeating the key, typed like the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.openapi.comments import Comments
from gateway.openapi.constraints import (
    field_rules,
    is_required,
    item_rules,
    merge,
    single_schema,
    unless_zero,
    value_schema,
)
from gateway.openapi.schema import WRAPPERS, Direction, Schema, scalar_schema
from gateway.routing.rules import Route
from gateway.routing.template import SegmentKind
from gateway.transcode.fields import TEXT_WKTS, is_map, is_repeated

_WKT_TEXT: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
}
_WKT_PREFIX = "google.protobuf."
_MAX_DEPTH = 4


def path_parameters(route: Route, comments: Comments) -> tuple[str, list[dict[str, Any]]]:
    """The OpenAPI path (``/api/v1/users/{user_id}``) and its parameters."""
    matcher = route.matcher
    starts = {v.start: v for v in matcher.variables}
    parts: list[str] = []
    params: list[dict[str, Any]] = []
    wildcards = 0
    i = 0
    while i < len(matcher.segments):
        variable = starts.get(i)
        if variable is not None:
            field = _field_at(route.input, variable.field_path)
            schema = ruled_text_schema(field)[0] if field is not None else {"type": "string"}
            if variable.single_segment:
                schema = {**schema, "minLength": 1} if schema.get("type") == "string" else schema
                note = ""
            else:
                schema = {"type": "string", "minLength": 1}
                note = "Spans several path segments: may contain `/`."
            description = " ".join(
                part for part in (comments.get(field.full_name, "") if field else "", note) if part
            )
            params.append(_param(variable.field_path, "path", schema, description, required=True))
            parts.append("{" + variable.field_path + "}")
            i = variable.end if variable.end is not None else len(matcher.segments)
            continue
        segment = matcher.segments[i]
        if segment.kind is SegmentKind.LITERAL:
            parts.append(segment.literal)
        else:
            wildcards += 1
            name = f"wildcard{wildcards}"
            note = "Any one segment." if segment.kind is SegmentKind.STAR else "Any segments, `/` included."
            params.append(_param(name, "path", {"type": "string", "minLength": 1}, note, required=True))
            parts.append("{" + name + "}")
        i += 1
    path = "/" + "/".join(parts)
    if matcher.verb:
        path += ":" + matcher.verb
    return path, params


def query_parameters(route: Route, comments: Comments) -> list[dict[str, Any]]:
    """The request fields bound by neither the path nor the body."""
    if route.body == "*":
        return []
    bound = [tuple(p.split(".")) for p in route.matcher.field_paths]
    if route.body:
        bound.append((route.body,))
    params = []
    for names, field in _leaf_fields(route.input, ()):
        if any(names[: len(b)] == b or b[: len(names)] == names for b in bound):
            continue
        schema, required = ruled_text_schema(field)
        # Only a top-level field's rules decide: a nested one is checked when its message is set.
        required = required and len(names) == 1
        param = _param(".".join(names), "query", schema, _note(field, comments), required=required)
        if is_repeated(field):
            param.update(style="form", explode=True)
        params.append(param)
    return params


def ruled_text_schema(field: FieldDescriptor) -> tuple[Schema, bool]:
    """A request field's text schema narrowed by its protovalidate rules, and whether it is required.
    A repeated field is an array of such values."""
    rules = field_rules(field)
    if is_repeated(field):
        items = item_rules(field, rules)
        item = text_schema(field)
        item = merge(item, single_schema(items, field)) if items is not None else item
        schema: Schema = {"type": "array", "items": item, **value_schema(field, rules)}
    else:
        schema = merge(text_schema(field), value_schema(field, rules))
    return unless_zero(schema, field, rules), is_required(field, rules)


def text_schema(field: FieldDescriptor) -> Schema:
    """The schema of one value given as text (a path segment, a query value, a multipart text part)."""
    message = field.message_type
    if message is not None:
        if message.full_name in _WKT_TEXT:
            return dict(_WKT_TEXT[message.full_name])
        value = message.fields_by_name.get("value")
        if value is not None:  # a wrapper: the wrapped scalar
            return text_schema(value)
        return {"type": "string"}
    schema = scalar_schema(field, Direction.OUTPUT)
    if field.type in _INT64_TYPES:
        # In a URL a 64-bit integer is just digits; the parser checks the range.
        return {"type": "integer", "format": schema["format"]}
    return schema


_INT64_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED64,
    }
)


def _leaf_fields(
    message: Descriptor, prefix: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], FieldDescriptor]]:
    """Fields a URL parameter can set: scalars, enums, text well-known types and wrappers, nested
    through singular plain messages down to a fixed depth (recursive messages would never end)."""
    if len(prefix) >= _MAX_DEPTH:
        return
    for field in message.fields:
        names = (*prefix, field.name)
        nested = field.message_type
        if nested is None:
            yield names, field
        elif is_map(field) or is_repeated(field):
            continue  # maps and repeated messages cannot be spelled as URL parameters
        elif nested.full_name in TEXT_WKTS or nested.full_name in WRAPPERS:
            yield names, field
        elif not nested.full_name.startswith(_WKT_PREFIX):
            yield from _leaf_fields(nested, names)


def _field_at(message: Descriptor, field_path: str) -> FieldDescriptor | None:
    field: FieldDescriptor | None = None
    current: Descriptor | None = message
    for name in field_path.split("."):
        field = current.fields_by_name.get(name) if current is not None else None
        if field is None:
            return None
        current = field.message_type
    return field


def _note(field: FieldDescriptor, comments: Comments) -> str:
    return comments.get(field.full_name, "")


def _param(
    name: str, where: str, schema: Schema, description: str, *, required: bool = False
) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": schema}
    if description:
        param["description"] = description
    return param
