"""meshkit.redis_keys: parts of Redis keys made of request data stay small and cannot collide."""

from __future__ import annotations

import re

import pytest

from meshkit.redis_keys import READABLE_MAX, key_part

DIGEST = re.compile(r"#[0-9a-f]{32}")


@pytest.mark.parametrize(
    "value",
    ["bob", "first.last+tag@example.co.uk", "default", "203.0.113.9", "0f8e-11aa_x", "", "a" * READABLE_MAX],
)
def test_short_plain_values_stay_readable(value: str) -> None:
    assert key_part(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "a" * (READABLE_MAX + 1),
        "a" * 256 * 1024,
        "2001:db8::1",  # ":" separates the parts of a key
        "{tenant}",  # braces make a Redis Cluster hash tag
        "bob smith",
        "bob\n",
        "stra\u00dfe",
        "#" + "0" * 32,  # looks like a digest: digested itself, so it cannot pose as one
        "\ud800",  # a lone surrogate (a decoded JSON "\ud800") digests rather than raising
    ],
)
def test_anything_else_becomes_a_fixed_size_digest(value: str) -> None:
    part = key_part(value)
    assert DIGEST.fullmatch(part), part
    assert key_part(value) == part  # the same value always gives the same part


def test_no_two_values_share_a_part_across_the_readable_boundary() -> None:
    values = ["a" * READABLE_MAX, "a" * (READABLE_MAX + 1), "a" * (READABLE_MAX + 2), "x:y", "x", "y"]
    values += [key_part(v) for v in values if key_part(v) != v]  # a digest sent back as a value
    parts = [key_part(v) for v in values]
    assert len(set(parts)) == len(values)


def test_no_part_is_longer_than_the_readable_limit() -> None:
    for value in ("", "b" * READABLE_MAX, "c" * 10**6, "\u00e9" * 1000, ":" * 5):
        assert len(key_part(value)) <= READABLE_MAX
