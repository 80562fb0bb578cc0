"""RE2 patterns (protovalidate's) in the JSON Schema dialect: the translated pattern matches the same
characters, and what every reader understands already stays as written."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import pytest

from gateway.openapi.patterns import ecma_pattern

CONTROLS = r"\x00-\x1F\x7F-\x9F"


def _same_characters(pattern: str, allowed: Callable[[str], bool]) -> None:
    for code in range(0x300):
        char = chr(code)
        assert (re.fullmatch(pattern, char) is not None) == allowed(char), hex(code)


def is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"


def test_a_class_adding_controls_to_not_cc_is_the_negated_class_of_the_others() -> None:
    text = ecma_pattern(r"[\n\r\t\P{Cc}]")
    assert text == r"[^\x00-\x08\x0B-\x0C\x0E-\x1F\x7F-\x9F]"
    _same_characters(text, lambda c: not is_control(c) or c in "\n\r\t")


def test_cc_properties_become_ranges_inside_and_outside_classes() -> None:
    title = ecma_pattern(r"^\P{Cc}*[^\p{Cc}\s]\P{Cc}*$")
    assert title == rf"^[^{CONTROLS}]*[^{CONTROLS}\s][^{CONTROLS}]*$"
    assert re.fullmatch(title, " Hello ") is not None
    assert re.fullmatch(title, "   ") is None
    assert re.fullmatch(title, "a\x07b") is None
    _same_characters(ecma_pattern(r"\p{Cc}"), is_control)
    _same_characters(ecma_pattern(r"[a\p{Cc}]"), lambda c: is_control(c) or c == "a")


@pytest.mark.parametrize(
    ("re2", "ecma"),
    [(r"[ '\x{2019}-]", r"[ '\u2019-]"), (r"\x{1F600}", r"\u{1F600}"), (r"\x{41}", r"\u0041")],
)
def test_braced_hex_escapes(re2: str, ecma: str) -> None:
    assert ecma_pattern(re2) == ecma


@pytest.mark.parametrize(
    "kept",
    [
        "^[A-Za-z0-9_.-]+$",
        r"^\s*(?:\p{L}\p{M}*(?:[ '-]?\p{L}\p{M}*)*)?\s*$",
        r"[a\P{Cc}]",  # a member that is no control: left to the reader
        r"\[x\]",
        r"^(?i:https?)://[^/?#]+",
    ],
)
def test_what_readers_understand_stays_as_written(kept: str) -> None:
    assert ecma_pattern(kept) == kept
