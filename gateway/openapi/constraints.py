"""protovalidate field rules (`buf.validate.field`) → JSON Schema keywords of a request field.

The backends refuse what these rules refuse, so the document states them: lengths, patterns, formats,
enums, ranges, item counts, and which fields a request must carry. A field is required when
protovalidate would refuse it absent: it has the `required` rule, or it has no presence (plain proto3
scalar, repeated, map) and its rules refuse the zero value, which is what "absent" means for it.
A rule that applies only when the field is set (`ignore: IGNORE_IF_ZERO_VALUE`, or a field with
presence) never makes it required; `IGNORE_ALWAYS` drops the field's rules. CEL rules have no
JSON Schema form: their messages are added to the description.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.openapi.patterns import ecma_pattern
from gateway.transcode.fields import is_map, is_repeated
from gateway.transcode.memo import memo_by_descriptor
from stubs.buf.validate import validate_pb2

Schema = dict[str, Any]
Rules = validate_pb2.FieldRules

# A string rule of a well-known format: the JSON Schema form of a value it accepts.
_STRING_FORMATS: dict[str, Schema] = {
    "email": {"format": "email"},
    "hostname": {"format": "hostname"},
    "ip": {"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    "ipv4": {"format": "ipv4"},
    "ipv6": {"format": "ipv6"},
    "uri": {"format": "uri"},
    "uri_ref": {"format": "uri-reference"},
    "address": {"anyOf": [{"format": "hostname"}, {"format": "ipv4"}, {"format": "ipv6"}]},
    "uuid": {"format": "uuid"},
    "tuuid": {"pattern": "^[0-9a-fA-F]{32}$"},
    "ulid": {"pattern": "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"},
    "ip_with_prefixlen": {"pattern": "/[0-9]{1,3}$"},
    "ipv4_with_prefixlen": {"pattern": "^[0-9.]+/[0-9]{1,2}$"},
    "ipv6_with_prefixlen": {"pattern": "^[0-9A-Fa-f:.]+/[0-9]{1,3}$"},
    "ip_prefix": {"pattern": "/[0-9]{1,3}$"},
    "ipv4_prefix": {"pattern": "^[0-9.]+/[0-9]{1,2}$"},
    "ipv6_prefix": {"pattern": "^[0-9A-Fa-f:.]+/[0-9]{1,3}$"},
    "host_and_port": {"pattern": ":[0-9]{1,5}$"},
    "protobuf_fqn": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"},
    "protobuf_dot_fqn": {"pattern": r"^(\.[A-Za-z_][A-Za-z0-9_]*)+$"},
}
_HEADER_REGEX = {
    validate_pb2.KNOWN_REGEX_HTTP_HEADER_NAME: "^:?[0-9a-zA-Z!#$%&'*+.^_|~`-]+$",
    validate_pb2.KNOWN_REGEX_HTTP_HEADER_VALUE: "^[^\\u0000-\\u0008\\u000A-\\u001F\\u007F]*$",
}
# Characters with a meaning in an ECMA-262 pattern (the dialect of JSON Schema).
_REGEX_SPECIAL = re.compile(r"([\\^$.|?*+()\[\]{}/])")
_NUMERIC = frozenset(
    {"float", "double", "int32", "int64", "uint32", "uint64"}
    | {"sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"}
)


def field_rules(field: FieldDescriptor) -> Rules | None:
    """The field's `buf.validate.field` rules, or None when it has none."""
    rules = _extension(field.GetOptions(), validate_pb2.field)
    return rules if isinstance(rules, Rules) else None


def _extension(options: Message, extension: Any) -> Message | None:
    """An option extension of a descriptor, or None.

    Descriptors resolved in the gateway's own pool parse their options when first asked; options
    parsed before this module registered `buf.validate` keep it as unknown bytes, so those are
    parsed again here rather than taken as "no rules".
    """
    if not options.HasExtension(extension):
        options = type(options).FromString(options.SerializeToString())
        if not options.HasExtension(extension):
            return None
    found: Message = options.Extensions[extension]
    return found


@memo_by_descriptor
def _message_oneofs(message: Descriptor) -> tuple[tuple[tuple[str, ...], bool, bool], ...]:
    """(member names, required, exclusive) of each group of fields of which at most one may be set:
    the message's `buf.validate.message` oneof rules (exclusive: the schema must say so) and its
    real oneofs required by `buf.validate.oneof` (JSON cannot set two members of those anyway)."""
    groups: list[tuple[tuple[str, ...], bool, bool]] = []
    rules = _extension(message.GetOptions(), validate_pb2.message)
    if isinstance(rules, validate_pb2.MessageRules):
        groups.extend((tuple(rule.fields), rule.required, True) for rule in rules.oneof)
    for oneof in message.oneofs:
        one = _extension(oneof.GetOptions(), validate_pb2.oneof)
        if isinstance(one, validate_pb2.OneofRules) and one.required:
            groups.append((tuple(f.name for f in oneof.fields), True, False))
    return tuple(groups)


def message_keywords(message: Descriptor, present: Iterable[str]) -> Schema:
    """Object keywords of the message's oneof rules over the fields in ``present`` (the body's):
    a required group needs one member set; a `buf.validate.message` group allows at most one."""
    shown = set(present)
    checks: list[Schema] = []
    for names, required, exclusive in _message_oneofs(message):
        members = [message.fields_by_name[n] for n in names if n in shown and n in message.fields_by_name]
        if not members:
            continue
        if required:
            checks.append({"anyOf": [_set(f) for f in members]})
        if exclusive and len(members) > 1:
            pairs = [(a, b) for i, a in enumerate(members) for b in members[i + 1 :]]
            checks.append({"not": {"anyOf": [{"allOf": [_set(a), _set(b)]} for a, b in pairs]}})
    return {"allOf": checks} if checks else {}


def message_notes(message: Descriptor) -> list[str]:
    """The messages of the message's CEL rules (no JSON Schema form): for its description."""
    rules = _extension(message.GetOptions(), validate_pb2.message)
    if not isinstance(rules, validate_pb2.MessageRules):
        return []
    return [rule.message or rule.expression for rule in rules.cel if rule.message or rule.expression]


def _set(field: FieldDescriptor) -> Schema:
    """A JSON object in which the field counts as set: present, not null, not its zero value."""
    unset = [None] if has_presence(field) else [None, zero_value(field)]
    return {"required": [field.name], "properties": {field.name: {"not": {"enum": unset}}}}


def _ignore(field: FieldDescriptor, rules: Rules) -> int:
    """The field's `ignore`: a member of a `buf.validate.message` oneof rule is ignored when zero."""
    if rules.ignore != validate_pb2.IGNORE_UNSPECIFIED or field.containing_type is None:
        return int(rules.ignore)
    rules_of = _extension(field.containing_type.GetOptions(), validate_pb2.message)
    if isinstance(rules_of, validate_pb2.MessageRules) and any(
        field.name in rule.fields for rule in rules_of.oneof
    ):
        return validate_pb2.IGNORE_IF_ZERO_VALUE
    return validate_pb2.IGNORE_UNSPECIFIED


def has_presence(field: FieldDescriptor) -> bool:
    """Whether "not set" differs from the zero value: proto3 `optional`, messages, oneof members."""
    return bool(field.has_presence) and not is_repeated(field)


def is_required(field: FieldDescriptor, rules: Rules | None) -> bool:
    """Whether protovalidate refuses a request without the field (JSON: absent or null)."""
    if rules is None or rules.ignore == validate_pb2.IGNORE_ALWAYS:
        return False
    if rules.required:
        return True
    if has_presence(field) or _ignore(field, rules) == validate_pb2.IGNORE_IF_ZERO_VALUE:
        return False
    return not accepts(value_schema(field, rules), zero_value(field))


def value_schema(field: FieldDescriptor, rules: Rules | None) -> Schema:
    """Keywords the whole value must meet: of the array for a repeated field, the object for a map,
    else of the single value. Empty when the rules say nothing JSON Schema can."""
    if rules is None or rules.ignore == validate_pb2.IGNORE_ALWAYS:
        return {}
    kind = rules.WhichOneof("type")
    if kind == "repeated" and is_repeated(field) and not is_map(field):
        repeated = rules.repeated
        keywords: Schema = {}
        _copy(repeated, keywords, min_items="minItems", max_items="maxItems")
        if repeated.unique:
            keywords["uniqueItems"] = True
        return keywords
    if kind == "map" and is_map(field):
        keywords = {}
        _copy(rules.map, keywords, min_pairs="minProperties", max_pairs="maxProperties")
        return keywords
    if kind is None or is_repeated(field):
        return {}
    return single_schema(rules, field)


def item_rules(field: FieldDescriptor, rules: Rules | None) -> Rules | None:
    """The rules of each item of a repeated field (each value of a map), if any."""
    if rules is None or rules.ignore == validate_pb2.IGNORE_ALWAYS:
        return None
    if rules.HasField("repeated") and rules.repeated.HasField("items"):
        return rules.repeated.items
    if rules.HasField("map") and rules.map.HasField("values"):
        return rules.map.values
    return None


def key_schema(rules: Rules | None) -> Schema:
    """`propertyNames` of a map field from its `map.keys` string rules."""
    if rules is None or not rules.HasField("map") or not rules.map.HasField("keys"):
        return {}
    keys = rules.map.keys
    return _string(keys.string) if keys.HasField("string") else {}


def single_schema(rules: Rules, field: FieldDescriptor) -> Schema:
    """Keywords of one scalar or enum value (a field's, or an item's when `rules` are `items`)."""
    if rules.ignore == validate_pb2.IGNORE_ALWAYS:
        return {}
    kind = rules.WhichOneof("type")
    if kind == "string":
        return _string(rules.string)
    if kind == "bytes":
        # A base64 text in JSON: only "not empty" carries over as a length.
        nonempty = rules.bytes.min_len > 0 or rules.bytes.len > 0
        return {"minLength": 1} if nonempty else {}
    if kind == "bool":
        return {"const": rules.bool.const} if rules.bool.HasField("const") else {}
    if kind == "enum" and field.enum_type is not None:
        return _enum(rules.enum, field)
    if kind in _NUMERIC:
        return _number(getattr(rules, kind))
    return {}


def cel_notes(rules: Rules | None) -> list[str]:
    """The messages of the field's CEL rules (no JSON Schema form): for the description."""
    if rules is None:
        return []
    return [rule.message or rule.expression for rule in rules.cel if rule.message or rule.expression]


def examples(rules: Rules | None) -> list[Any]:
    """The `example` values the rules declare for a scalar field."""
    kind = rules.WhichOneof("type") if rules is not None else None
    if rules is None or kind is None or kind in ("repeated", "map"):
        return []
    typed = getattr(rules, kind)
    return list(typed.example) if "example" in typed.DESCRIPTOR.fields_by_name else []


def _string(rules: validate_pb2.StringRules) -> Schema:
    keywords: Schema = {}
    if rules.HasField("const"):
        keywords["const"] = rules.const
    if rules.HasField("len"):
        keywords["minLength"] = keywords["maxLength"] = rules.len
    _copy(rules, keywords, min_len="minLength", max_len="maxLength")
    # A byte bound is looser in characters: n bytes hold at most n, and at least n/4, characters.
    if rules.HasField("max_bytes"):
        keywords["maxLength"] = min(keywords.get("maxLength", rules.max_bytes), rules.max_bytes)
    if rules.HasField("min_bytes") and rules.min_bytes > 0:
        keywords["minLength"] = max(keywords.get("minLength", 0), -(-rules.min_bytes // 4))
    patterns = [ecma_pattern(rules.pattern)] if rules.HasField("pattern") else []
    if rules.HasField("prefix"):
        patterns.append("^" + _literal(rules.prefix))
    if rules.HasField("suffix"):
        patterns.append(_literal(rules.suffix) + "$")
    if rules.HasField("contains"):
        patterns.append(_literal(rules.contains))
    if rules.HasField("well_known_regex") and rules.well_known_regex in _HEADER_REGEX:
        patterns.append(_HEADER_REGEX[rules.well_known_regex])
    well_known = rules.WhichOneof("well_known")
    if well_known in _STRING_FORMATS and getattr(rules, well_known) is True:
        form = _STRING_FORMATS[well_known]
        if "pattern" in form:
            patterns.append(form["pattern"])
        else:
            keywords.update(form)
    if patterns:
        keywords["pattern"] = patterns[0]
        if len(patterns) > 1:
            keywords["allOf"] = [{"pattern": p} for p in patterns[1:]]
    allowed = list(getattr(rules, "in"))
    if allowed:
        keywords["enum"] = allowed
    excluded: list[Schema] = (
        [{"pattern": _literal(rules.not_contains)}] if rules.HasField("not_contains") else []
    )
    if rules.not_in:
        excluded.append({"enum": list(rules.not_in)})
    if excluded:
        keywords["not"] = excluded[0] if len(excluded) == 1 else {"anyOf": excluded}
    return keywords


def _enum(rules: validate_pb2.EnumRules, field: FieldDescriptor) -> Schema:
    assert field.enum_type is not None
    values = [(v.number, v.name) for v in field.enum_type.values]
    if rules.HasField("const"):
        values = [(n, name) for n, name in values if n == rules.const]
    allowed = list(getattr(rules, "in"))
    if allowed:
        values = [(n, name) for n, name in values if n in allowed]
    values = [(n, name) for n, name in values if n not in rules.not_in]
    # `defined_only`: the schema lists only defined names already.
    return {"enum": [name for _, name in values]} if len(values) < len(field.enum_type.values) else {}


def _number(rules: Any) -> Schema:
    """Any of the numeric rule messages: they share their field names."""
    keywords: Schema = {}
    if rules.HasField("const"):
        keywords["const"] = rules.const
    upper = _bound(rules, "lt", "exclusiveMaximum", "lte", "maximum")
    lower = _bound(rules, "gt", "exclusiveMinimum", "gte", "minimum")
    if upper and lower and next(iter(lower.values())) > next(iter(upper.values())):
        # protovalidate's exclusive range (e.g. gt: 10, lt: 5): outside the interval.
        keywords["anyOf"] = [lower, upper]
    else:
        keywords.update(upper)
        keywords.update(lower)
    allowed = list(getattr(rules, "in"))
    if allowed:
        keywords["enum"] = allowed
    refused = list(rules.not_in)
    if refused:
        keywords["not"] = {"enum": refused}
    return keywords


def _bound(rules: Message, exclusive: str, exclusive_key: str, inclusive: str, inclusive_key: str) -> Schema:
    if rules.HasField(exclusive):
        return {exclusive_key: getattr(rules, exclusive)}
    if rules.HasField(inclusive):
        return {inclusive_key: getattr(rules, inclusive)}
    return {}


def _copy(rules: Message, keywords: Schema, **names: str) -> None:
    for field, keyword in names.items():
        if rules.HasField(field):
            keywords[keyword] = getattr(rules, field)


def _literal(text: str) -> str:
    return _REGEX_SPECIAL.sub(r"\\\1", text)


def zero_value(field: FieldDescriptor) -> Any:
    """The JSON of the field's zero value: what an absent field without presence is."""
    if is_map(field):
        return {}
    if is_repeated(field):
        return []
    if field.enum_type is not None:
        return field.enum_type.values[0].name if field.enum_type.values else 0
    if field.type == FieldDescriptor.TYPE_BOOL:
        return False
    if field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
        return ""
    if field.message_type is not None:
        return None
    return 0


def accepts(keywords: Schema, value: Any) -> bool:
    """Whether a value meets the keywords this module writes (enough JSON Schema for zero values)."""
    checks: dict[str, Callable[[Any], bool]] = {
        "const": lambda k: value == k,
        "enum": lambda k: value in k,
        "minLength": lambda k: not isinstance(value, str) or len(value) >= k,
        "maxLength": lambda k: not isinstance(value, str) or len(value) <= k,
        "pattern": lambda k: not isinstance(value, str) or _matches(k, value),
        # Every format named here refuses the empty string.
        "format": lambda k: not isinstance(value, str) or value != "",
        "minimum": lambda k: not _is_number(value) or value >= k,
        "maximum": lambda k: not _is_number(value) or value <= k,
        "exclusiveMinimum": lambda k: not _is_number(value) or value > k,
        "exclusiveMaximum": lambda k: not _is_number(value) or value < k,
        "minItems": lambda k: not isinstance(value, list) or len(value) >= k,
        "minProperties": lambda k: not isinstance(value, dict) or len(value) >= k,
        "allOf": lambda k: all(accepts(s, value) for s in k),
        "anyOf": lambda k: any(accepts(s, value) for s in k),
        "not": lambda k: not accepts(k, value),
    }
    return all(check(keywords[key]) for key, check in checks.items() if key in keywords)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _matches(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:  # an RE2 construct Python lacks: assume it may match
        return True


def merge(base: Schema, keywords: Schema) -> Schema:
    """A value's type schema narrowed by rule keywords (a rule's bound replaces the type's own).

    Numbers in a request may be JSON numbers or text (64-bit integers, NaN/Infinity): the keywords
    narrow the numeric branch; a bounded float leaves the NaN/Infinity texts out, as its bounds
    refuse NaN.
    """
    if not keywords:
        return base
    branches = base.get("anyOf")
    if isinstance(branches, list) and "type" not in base:
        numeric = next((b for b in branches if b.get("type") in ("integer", "number")), None)
        if numeric is not None:
            narrowed = merge(numeric, keywords)
            if numeric["type"] == "number":
                return narrowed
            return {**base, "anyOf": [narrowed if b is numeric else b for b in branches]}
    if "$ref" in base:
        return {"allOf": [base, keywords]}
    return {**base, **keywords}


def unless_zero(schema: Schema, field: FieldDescriptor, rules: Rules | None) -> Schema:
    """``IGNORE_IF_ZERO_VALUE`` on a field without presence: its zero value is accepted too."""
    if rules is None or has_presence(field) or _ignore(field, rules) != validate_pb2.IGNORE_IF_ZERO_VALUE:
        return schema
    zero = zero_value(field)
    keywords = value_schema(field, rules)
    if not keywords or accepts(keywords, zero):
        return schema
    return {"anyOf": [{"const": zero}, schema]}
