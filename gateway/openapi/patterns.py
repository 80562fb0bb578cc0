"""protovalidate's RE2 patterns in the ECMA-262 dialect of JSON Schema, where the two differ in
patterns Portico writes, so every JSON Schema tool (validators, schemathesis, client generators)
reads them:

- ``\\x{2019}`` is ``\\u2019`` (``\\u{1F600}`` beyond the BMP);
- ``\\p{Cc}`` / ``\\P{Cc}`` (control characters, and all but them) are spelled as their code point
  ranges, inside a class too; a class that adds control characters to ``\\P{Cc}``
  (``[\\n\\t\\P{Cc}]``) becomes the negated class of the other controls.

Anything else is left as written (most of RE2 is ECMA-262 already).
"""

from __future__ import annotations

import re

_CONTROLS = [*range(0x00, 0x20), *range(0x7F, 0xA0)]  # Unicode category Cc
_CONTROL_RANGES = r"\x00-\x1F\x7F-\x9F"
_SIMPLE_ESCAPES = {"\\t": 0x09, "\\n": 0x0A, "\\v": 0x0B, "\\f": 0x0C, "\\r": 0x0D, "\\0": 0x00}
_ESCAPE = re.compile(
    r"\\(?:x\{[0-9A-Fa-f]{1,6}\}|[pP]\{[A-Za-z_]+\}|x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|.)", re.S
)


def ecma_pattern(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            token = _token(pattern, i)
            out.append(
                {"\\p{Cc}": f"[{_CONTROL_RANGES}]", "\\P{Cc}": f"[^{_CONTROL_RANGES}]"}.get(
                    token, _hex(token)
                )
            )
            i += len(token)
        elif pattern[i] == "[":
            members, negated, i = _class(pattern, i)
            out.append(_class_text(members, negated))
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


def _token(pattern: str, i: int) -> str:
    found = _ESCAPE.match(pattern, i)
    return found[0] if found else pattern[i]


def _class(pattern: str, i: int) -> tuple[list[str], bool, int]:
    """The members of the class opening at ``i``, whether it is negated, and the index after it."""
    i += 1
    negated = pattern.startswith("^", i)
    i += negated
    members: list[str] = []
    while i < len(pattern) and (pattern[i] != "]" or not members):
        token = _token(pattern, i) if pattern[i] == "\\" else pattern[i]
        members.append(token)
        i += len(token)
    return members, negated, i + 1


def _class_text(members: list[str], negated: bool) -> str:
    if "\\P{Cc}" in members and not negated:
        others = [m for m in members if m != "\\P{Cc}"]
        kept = [_control(m) for m in others]
        if all(code is not None for code in kept):
            refused = [c for c in _CONTROLS if c not in kept]
            return "[^" + "".join(_span(low, high) for low, high in _ranges(refused)) + "]"
    inline = [_CONTROL_RANGES if m == "\\p{Cc}" else _hex(m) for m in members]
    return "[" + "^" * negated + "".join(inline) + "]"


def _hex(token: str) -> str:
    if not token.startswith("\\x{"):
        return token
    code = int(token[3:-1], 16)
    return f"\\u{code:04X}" if code <= 0xFFFF else f"\\u{{{token[3:-1]}}}"


def _control(token: str) -> int | None:
    """The code point of a member naming one control character, else None."""
    code = _SIMPLE_ESCAPES.get(token)
    if code is None and len(token) > 2 and token[:2] in ("\\x", "\\u") and "{" not in token:
        code = int(token[2:], 16)
    return code if code in _CONTROLS else None


def _ranges(codes: list[int]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for code in codes:
        if spans and spans[-1][1] == code - 1:
            spans[-1] = (spans[-1][0], code)
        else:
            spans.append((code, code))
    return spans


def _span(low: int, high: int) -> str:
    return f"\\x{low:02X}" if low == high else f"\\x{low:02X}-\\x{high:02X}"
