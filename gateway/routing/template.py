"""google.api.http path templates, parsed once into a matcher that binds path segments to fields.

Grammar (google/api/http.proto):

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

A template compiles to a tuple of segment kinds (literal, `*`, `**`) plus the spans variables bind,
so matching a request is a walk over its segments with no parsing and no regex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Characters a literal segment may not contain: they are template syntax or would never match a path.
_LITERAL_FORBIDDEN = frozenset("{}=*:/?#")


class TemplateError(ValueError):
    """A path template that does not follow the google.api.http grammar."""

    def __init__(self, template: str, reason: str) -> None:
        super().__init__(f"invalid path template {template!r}: {reason}")
        self.template = template
        self.reason = reason


class SegmentKind(Enum):
    LITERAL = "literal"
    STAR = "*"  # exactly one non-empty segment
    DOUBLE_STAR = "**"  # zero or more segments; only last, so matching never needs to backtrack within


@dataclass(frozen=True, slots=True)
class Segment:
    kind: SegmentKind
    literal: str = ""


@dataclass(frozen=True, slots=True)
class Variable:
    """A field path bound to segments [start, end); end None means "to the end" (a trailing `**`)."""

    field_path: str
    start: int
    end: int | None

    @property
    def single_segment(self) -> bool:
        return self.end is not None and self.end - self.start == 1


@dataclass(frozen=True, slots=True)
class PathTemplate:
    """A compiled template. `segments` is what the route table indexes; `bind` extracts the fields."""

    source: str
    segments: tuple[Segment, ...]
    variables: tuple[Variable, ...]
    verb: str

    @property
    def field_paths(self) -> tuple[str, ...]:
        return tuple(v.field_path for v in self.variables)

    def shape(self) -> tuple[tuple[str, ...], str]:
        """What two templates must share to be ambiguous: segment kinds and literals, and the verb.

        Variable names do not count: `/users/{id}` and `/users/{user_id}` match exactly the same paths.
        """
        return tuple(s.literal if s.kind is SegmentKind.LITERAL else s.kind.value for s in self.segments), (
            self.verb
        )

    def match(self, path: str) -> dict[str, str] | None:
        """Match a whole request path (no query string); the field bindings, or None.

        The route table does not call this (it walks its index once for all templates); it is the
        single-template reference used by tests and tools.
        """
        raw = split_path(path, self.verb)
        if raw is None or not self.accepts(raw):
            return None
        return self.bind(raw)

    def accepts(self, raw: list[str]) -> bool:
        """Whether the raw segments have this template's shape (literals compared after decoding)."""
        n = len(self.segments)
        has_tail = n > 0 and self.segments[-1].kind is SegmentKind.DOUBLE_STAR
        fixed = n - 1 if has_tail else n
        if len(raw) < fixed or (not has_tail and len(raw) != fixed):
            return False
        for segment, value in zip(self.segments[:fixed], raw, strict=False):
            if segment.kind is SegmentKind.LITERAL:
                if value != segment.literal and _decoded_or_none(value) != segment.literal:
                    return False
            elif not value:
                return False
        return True

    def bind(self, raw: list[str]) -> dict[str, str] | None:
        """Field values for segments already known to have this template's shape.

        A single-segment variable is percent-decoded once, and a `/` it decodes to (from `%2F`) is
        refused: it would let one path segment address what the contract says is a single name.
        A multi-segment variable keeps `%2F` encoded so the segment boundaries stay visible, as the
        google.api.http spec requires.
        """
        values: dict[str, str] = {}
        try:
            for variable in self.variables:
                if variable.single_segment:
                    value = decode_segment(raw[variable.start])
                    if "/" in value:
                        return None
                else:
                    parts = raw[variable.start : variable.end]
                    value = "/".join(decode_keeping_slash(p) for p in parts)
                values[variable.field_path] = value
        except UnicodeDecodeError:
            # Escapes that are not UTF-8 cannot be a proto string field's value.
            return None
        return values


def split_path(path: str, verb: str) -> list[str] | None:
    """The raw (still encoded) segments of `path`, with `:verb` removed; None if the verb is missing."""
    if not path.startswith("/"):
        return None
    if verb:
        suffix = ":" + verb
        if not path.endswith(suffix):
            return None
        path = path[: -len(suffix)]
    return path[1:].split("/")


def decode_segment(raw: str) -> str:
    """Percent-decode once; UnicodeDecodeError for escapes that are not UTF-8."""
    # Fast path: most segments carry no escapes.
    return unquote(raw, errors="strict") if "%" in raw else raw


def _decoded_or_none(raw: str) -> str | None:
    try:
        return decode_segment(raw)
    except UnicodeDecodeError:
        return None


def decode_keeping_slash(raw: str) -> str:
    if "%" not in raw:
        return raw
    # Protect %2F by escaping its '%', so one unquote pass leaves it as the literal text "%2F".
    return unquote(raw.replace("%2F", "%252F").replace("%2f", "%252F"), errors="strict")


def parse_template(template: str) -> PathTemplate:
    """Parse and compile a google.api.http path template; raise TemplateError if it is not valid."""
    if not template.startswith("/"):
        raise TemplateError(template, "must start with '/'")
    body, verb = _split_verb(template)
    segments: list[Segment] = []
    variables: list[Variable] = []
    seen: set[str] = set()
    tokens = _split_top_level(template, body[1:])
    for index, token in enumerate(tokens):
        if not token and index == len(tokens) - 1 and index > 0:
            # A trailing slash (`/users/`, as some APIs spell a collection) is an empty last literal: it
            # matches only a path that ends in '/', so `/users` and `/users/` stay two routes.
            segments.append(Segment(SegmentKind.LITERAL, ""))
        elif token.startswith("{"):
            if not token.endswith("}"):
                raise TemplateError(template, f"unterminated variable {token!r}")
            field_path, _, sub = token[1:-1].partition("=")
            _check_field_path(template, field_path)
            if field_path in seen:
                raise TemplateError(template, f"field {field_path!r} bound twice")
            seen.add(field_path)
            start = len(segments)
            inner = sub.split("/") if sub else ["*"]
            for part in inner:
                if part.startswith("{"):
                    raise TemplateError(template, "variables cannot nest")
                segments.append(_plain_segment(template, part))
            end = None if segments[-1].kind is SegmentKind.DOUBLE_STAR else len(segments)
            variables.append(Variable(field_path, start, end))
        else:
            segments.append(_plain_segment(template, token))
    for i, segment in enumerate(segments):
        if segment.kind is SegmentKind.DOUBLE_STAR and i != len(segments) - 1:
            raise TemplateError(template, "'**' must be the last segment")
    return PathTemplate(template, tuple(segments), tuple(variables), verb)


def _split_verb(template: str) -> tuple[str, str]:
    depth = 0
    for i, ch in enumerate(template):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise TemplateError(template, "unbalanced '}'")
        elif ch == ":" and depth == 0:
            verb = template[i + 1 :]
            if not verb or any(c in _LITERAL_FORBIDDEN for c in verb):
                raise TemplateError(template, f"bad verb {verb!r}")
            return template[:i], verb
    if depth != 0:
        raise TemplateError(template, "unbalanced '{'")
    return template, ""


def _split_top_level(template: str, body: str) -> list[str]:
    """Split on '/' outside braces: `{name=shelves/*}` is one token."""
    tokens: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in body:
        if ch == "{":
            if depth:
                raise TemplateError(template, "variables cannot nest")
            depth = 1
        elif ch == "}":
            depth = 0
        if ch == "/" and depth == 0:
            tokens.append("".join(current))
            current = []
        else:
            current.append(ch)
    tokens.append("".join(current))
    return tokens


def _plain_segment(template: str, part: str) -> Segment:
    if part == "*":
        return Segment(SegmentKind.STAR)
    if part == "**":
        return Segment(SegmentKind.DOUBLE_STAR)
    if not part:
        raise TemplateError(template, "empty segment")
    if any(c in _LITERAL_FORBIDDEN for c in part):
        raise TemplateError(template, f"bad literal segment {part!r}")
    return Segment(SegmentKind.LITERAL, decode_segment(part))


def _check_field_path(template: str, field_path: str) -> None:
    if not all(_IDENT.match(part) for part in field_path.split(".")):
        raise TemplateError(template, f"bad field path {field_path!r}")
