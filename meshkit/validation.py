"""Field checks every backend shares: text normalisation, UUID ids and page parameters; pure functions.

Each check returns ``(field, description)`` violations so a request with several problems reports all
of them at once.
"""

from __future__ import annotations

import unicodedata
import uuid

from meshkit.rpc.status import FieldViolation

PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 20, 100


def normalise(text: str) -> str:
    """NFC and outer whitespace trimmed: what we store and compare."""
    return unicodedata.normalize("NFC", text).strip()


def check_uuid(value: str, field: str, what: str) -> list[FieldViolation]:
    """``value`` is a UUID in its canonical form (any case); ``what`` names it, e.g. "a user id"."""
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError):
        return [(field, f"must be {what} (UUID)")]
    return [] if str(parsed) == value.lower() else [(field, f"must be {what} (UUID)")]


def check_page(page: int, page_size: int) -> list[FieldViolation]:
    """0 means "not given" (proto3 defaults): page 1 and the default size."""
    problems: list[FieldViolation] = []
    if page < 0:
        problems.append(("page", "must be at least 1"))
    if page_size < 0 or page_size > PAGE_SIZE_MAX:
        problems.append(("page_size", f"must be between 1 and {PAGE_SIZE_MAX}"))
    return problems


def page_or_default(page: int, page_size: int) -> tuple[int, int]:
    return page or 1, page_size or PAGE_SIZE_DEFAULT
