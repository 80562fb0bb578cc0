"""Building a request message from the three parts of an HTTP request, as a `google.api.http` rule says.

- Path variables bind the fields the rule's template names (``{user_id}``, ``{user.id}``).
- The body binds per the rule's ``body``: ``"*"`` the whole message, ``"field"`` that one field, ``""``
  nothing (a non-empty body is then refused).
- Query parameters bind every field bound by neither. Unlike grpc-gateway, which silently drops
  unknown parameters, an unknown parameter, or one naming a field the path or body already binds, is
  a 400: a typo (``?pagesize=5``) should not quietly give the default.

When the path and the body both set a field, the path wins: the URL names the resource, and a body
cannot redirect an update to another one (``PUT /users/a`` with ``{"user_id": "b"}`` updates ``a``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.transcode.body import INVALID_BODY, bind_object, check_value
from gateway.transcode.fields import descriptor_of, field_named, is_map, is_repeated, set_from_text
from gateway.transcode.json_depth import MAX_JSON_DEPTH, nesting_exceeds
from gateway.transcode.violations import FieldViolation, TranscodeError

M = TypeVar("M", bound=Message)

INVALID_PARAMETERS = "Invalid request parameters"
UNKNOWN_PARAMETER = "unknown parameter"


def parse_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> object:
    """The decoded JSON of a request body; TranscodeError when it is not JSON in UTF-8 or nests deeper
    than ``max_depth`` (checked before parsing: the parser recurses per level)."""
    if nesting_exceeds(raw, max_depth):
        raise TranscodeError(f"Request body is nested too deeply (at most {max_depth} levels)")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_object_without_duplicates)
    except _DuplicateKey as duplicate:
        raise TranscodeError(INVALID_BODY, [(duplicate.key, "given twice")]) from None
    except (UnicodeDecodeError, ValueError):
        raise TranscodeError("Request body is not valid JSON") from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice: readers disagree on which value wins (Python keeps the
    last, others the first), so a proxy in front could check one value while the backend gets another."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def build_request(
    message_class: type[M],
    *,
    body_rule: str = "",
    path: Mapping[str, str] | None = None,
    query: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    max_depth: int = MAX_JSON_DEPTH,
) -> M:
    """The request message for one HTTP request; TranscodeError (a 400) when it cannot be built.

    ``path`` maps the template's field paths (proto names, dotted) to the matched URL segments,
    already percent-decoded. ``query`` is the decoded query string in order. ``body`` is the raw
    request body; empty (or only whitespace) means none; ``max_depth`` bounds its nesting.
    """
    message = message_class()
    path = path or {}
    if body.strip():
        if not body_rule:
            raise TranscodeError("This route takes no request body")
        bind_body(message, body_rule, parse_json(body, max_depth))
    # Path after body, so that the path wins (see the module docstring).
    violations: list[FieldViolation] = []
    for field_path, text in path.items():
        target, field = _resolve(message, field_path.split("."), field_path, from_path=True)
        _collect(violations, target, field, text, field_path)
    bound = [tuple(p.split(".")) for p in path]
    bind_query(message, query, bound, body_rule, violations)
    if violations:
        raise TranscodeError(INVALID_PARAMETERS, violations)
    return message


def bind_body(message: Message, body_rule: str, body: object) -> None:
    """Bind a decoded JSON body: the whole message for ``"*"``, else the top-level field ``body_rule``."""
    if body_rule == "*":
        bind_object(body, message)
        return
    field = descriptor_of(message).fields_by_name.get(body_rule)
    if field is None:
        raise ValueError(f"body field {body_rule!r} is not a field of {descriptor_of(message).full_name}")
    if field.message_type is not None and not is_repeated(field) and not _is_wkt(field):
        bind_object(body, getattr(message, field.name))
        return
    # A scalar, repeated or well-known-type body field: the body is that field's JSON value.
    violations: list[FieldViolation] = []
    check_value(body, descriptor_of(message), field, field.name, violations)
    if violations:
        raise TranscodeError("Invalid request body", violations)
    bind_object({field.name: body}, message)


def bind_query(
    message: Message,
    query: Iterable[tuple[str, str]],
    bound: list[tuple[str, ...]],
    body_rule: str,
    violations: list[FieldViolation],
    unknown: str = UNKNOWN_PARAMETER,
) -> None:
    """Bind query parameters onto fields the path and body leave free; problems go to ``violations``.

    ``unknown`` describes a name that is no such free field (a form says "unknown field", as a body)."""
    if body_rule == "*":
        bound = [*bound, ()]  # the body binds everything: no parameter is free
    elif body_rule:
        bound = [*bound, (body_rule,)]
    seen: set[tuple[str, ...]] = set()
    for key, text in query:
        try:
            target, field = _resolve(message, key.split("."), key, from_path=False)
        except TranscodeError:  # the one thing _resolve refuses a query name for: it is no field
            violations.append((key, unknown))
            continue
        names = _proto_path(descriptor_of(message), key.split("."))
        if any(_overlaps(names, b) for b in bound):
            violations.append((key, unknown))  # set by the path or body, not the query
            continue
        if names in seen and not is_repeated(field):
            violations.append((key, "given more than once"))
            continue
        seen.add(names)
        _collect(violations, target, field, text, key)


def _collect(
    violations: list[FieldViolation], target: Message, field: FieldDescriptor, text: str, where: str
) -> None:
    try:
        set_from_text(target, field, text, where)
    except TranscodeError as error:
        violations.extend(error.violations)


def _resolve(
    message: Message, parts: list[str], where: str, *, from_path: bool
) -> tuple[Message, FieldDescriptor]:
    """The message holding the leaf field of a dotted path, creating the parents on the way."""
    target = message
    for depth, part in enumerate(parts):
        field = field_named(descriptor_of(target), part)
        last = depth == len(parts) - 1
        usable = field is not None and (
            last or (field.message_type is not None and not is_repeated(field) and not _is_wkt(field))
        )
        if field is None or not usable or is_map(field):
            if from_path:
                # The template comes from the service's own descriptors: a wrong path is our bug.
                raise ValueError(
                    f"path variable {where!r} is not a field of {descriptor_of(message).full_name}"
                )
            raise TranscodeError(INVALID_PARAMETERS, [(where, UNKNOWN_PARAMETER)])
        if last:
            return target, field
        target = getattr(target, field.name)
    raise ValueError("empty field path")


def _proto_path(descriptor: Descriptor, parts: list[str]) -> tuple[str, ...]:
    """A resolved dotted path in proto names (the client may have used JSON names)."""
    names: list[str] = []
    current: Descriptor | None = descriptor
    for part in parts:
        field = field_named(current, part) if current is not None else None
        names.append(field.name if field is not None else part)
        current = field.message_type if field is not None else None
    return tuple(names)


def _overlaps(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    # A parameter collides with a bound field when either path contains the other.
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def _is_wkt(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.full_name.startswith("google.protobuf.")
