"""The nesting scan run before a JSON body is parsed: exact depths, strings and escapes, no recursion."""

from __future__ import annotations

import json

import pytest

from gateway.transcode.json_depth import json_depth, nesting_exceeds


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        (b"", 0),
        (b'"text"', 0),
        (b"42", 0),
        (b"{}", 1),
        (b"[[]]", 2),
        (b'{"a": [1, {"b": []}], "c": {}}', 4),
        (b"[][][]", 1),  # siblings do not add up
        (b'{"a": "[[[{{{"}', 1),  # brackets inside a string are text
        (b'{"a": "say \\"[[[\\" twice"}', 1),  # escaped quotes do not end the string
        (b'["back\\\\", [[]]]', 3),  # an escaped backslash does: the quote after it closes the string
        (b'["\\u005b\\"", []]', 2),  # \u005b is "[" only once decoded
        ('{"ä": ["ü[", ["€"]]}'.encode(), 3),  # UTF-8: no multi-byte sequence holds a quote or a bracket
        (b'["unterminated [[[[', 1),  # the rest is string to the scan; the parser refuses it at once
        (b"]]]][[", 0),  # unbalanced: the parser fails at the first "]", before going any deeper
    ],
)
def test_depth(raw: bytes, depth: int) -> None:
    assert json_depth(raw) == depth


def test_depth_agrees_with_the_parser_on_every_valid_document() -> None:
    def parsed_depth(value: object) -> int:
        if isinstance(value, dict):
            return 1 + max(map(parsed_depth, value.values()), default=0)
        if isinstance(value, list):
            return 1 + max(map(parsed_depth, value), default=0)
        return 0

    documents = [{"a": [[], {"b": "]]"}]}, [[[["x\\", '"[']]]], {"k": {"k": {"k": None}}}, ["{", "}"]]
    for document in documents:
        assert json_depth(json.dumps(document).encode()) == parsed_depth(document)


def test_a_hundred_thousand_brackets_are_counted_without_recursing() -> None:
    assert json_depth(b"[" * 100_000) == 100_000
    assert nesting_exceeds(b"[" * 100_000, 32)


@pytest.mark.parametrize(
    ("raw", "limit", "exceeds"),
    [
        (b"[" * 32 + b"]" * 32, 32, False),  # at the limit
        (b"[" * 33 + b"]" * 33, 32, True),  # one past it
        (b'{"a": "' + b"[" * 100 + b'"}', 32, False),  # many brackets, all in a string
        (b"[]" * 100, 1, False),  # many brackets, none nested
        (b"{}", 0, True),
    ],
)
def test_nesting_exceeds(raw: bytes, limit: int, exceeds: bool) -> None:
    assert nesting_exceeds(raw, limit) is exceeds
