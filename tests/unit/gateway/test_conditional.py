"""If-None-Match as RFC 9110 reads it: lists, ``*`` and weak comparison."""

from __future__ import annotations

import pytest

from gateway.conditional import not_modified

ETAG = '"abc123"'


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('"abc123"', True),
        ('W/"abc123"', True),
        ('"zzz", "abc123"', True),
        (' "zzz" ,W/"abc123" ', True),
        ("*", True),
        ('"abc1234"', False),
        ('"zzz"', False),
        ("abc123", False),  # not a quoted tag
        ("", False),
        ("  ", False),
    ],
)
def test_if_none_match(header: str, expected: bool) -> None:
    assert not_modified(header, ETAG) is expected
