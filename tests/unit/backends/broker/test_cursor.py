"""A stream cursor: every partition's last delivered offset, read strictly from what a client sends."""

from __future__ import annotations

import pytest

from backends.broker.cursor import MAX_CHARS, CursorError, parse, render


@pytest.mark.parametrize(
    ("text", "positions"),
    [
        ("0:41", {0: 41}),
        ("0:41,1:17,2:-1", {0: 41, 1: 17, 2: -1}),
        ("2:5,0:0", {0: 0, 2: 5}),  # any order; a partition left out is read from its beginning
        (f"0:{2**63 - 1}", {0: 2**63 - 1}),
    ],
)
def test_parse_and_render(text: str, positions: dict[int, int]) -> None:
    assert parse(text) == positions
    assert parse(render(positions)) == positions
    assert render(positions) == ",".join(f"{p}:{o}" for p, o in sorted(positions.items()))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "cursor such as"),
        ("42", "cursor such as"),
        ("0:", "cursor such as"),
        (":1", "cursor such as"),
        ("0:1,", "cursor such as"),
        ("0:+1", "cursor such as"),
        ("0:1 ", "cursor such as"),
        ("0:\u0661", "cursor such as"),  # an Arabic-Indic digit: str.isdigit takes it, int() too
        ("0:--1", "cursor such as"),
        ("0:-2", "out of range"),
        (f"0:{2**63}", "out of range"),
        (f"{2**31}:0", "out of range"),
        ("1:3,1:3", "names a partition twice"),
        ("0:1," * (MAX_CHARS // 4 + 1), "at most"),
    ],
)
def test_malformed_cursors_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(CursorError, match=reason):
        parse(text)
