"""Validation of post fields as the contract states them; pure functions returning field violations."""

from __future__ import annotations

import unicodedata

from meshkit.rpc.status import FieldViolation
from meshkit.validation import check_uuid

TITLE_MAX = 200
CONTENT_MAX = 10_000
# Line breaks and tabs belong in a post body; other control characters only corrupt displays and logs.
_CONTENT_CONTROLS_ALLOWED = frozenset("\n\r\t")


def _has_controls(value: str, allowed: frozenset[str] = frozenset()) -> bool:
    return any(unicodedata.category(char) == "Cc" and char not in allowed for char in value)


def check_title(value: str, field: str = "title") -> list[FieldViolation]:
    if not 1 <= len(value) <= TITLE_MAX:
        return [(field, f"must be 1-{TITLE_MAX} characters")]
    if _has_controls(value):
        return [(field, "must not contain control characters")]
    return []


def check_content(value: str, field: str = "content") -> list[FieldViolation]:
    if len(value) > CONTENT_MAX:
        return [(field, f"must be at most {CONTENT_MAX} characters")]
    if _has_controls(value, _CONTENT_CONTROLS_ALLOWED):
        return [(field, "must not contain control characters other than line breaks and tabs")]
    return []


def check_post_id(value: str, field: str = "post_id") -> list[FieldViolation]:
    return check_uuid(value, field, "a post id")


def check_author_id(value: str, field: str = "author_id") -> list[FieldViolation]:
    return check_uuid(value, field, "a user id")
