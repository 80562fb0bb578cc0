"""Field checks every backend shares: text normalisation, UUID ids and page parameters; pure functions.

Each check returns ``(field, description)`` violations so a request with several problems reports all
of them at once.
"""

from __future__ import annotations

import re
import unicodedata

from meshkit.rpc.status import FieldViolation

PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 20, 100


def normalise(text: str) -> str:
    """NFC and outer whitespace trimmed: what we store and compare."""
    return unicodedata.normalize("NFC", text).strip()


# The canonical form, any case: what ``str(uuid.UUID(value)) == value.lower()`` accepts, without building a
# UUID (every id of every call is checked). ASCII hex only: ``int(..., 16)`` would take other digits.
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def check_uuid(value: str, field: str, what: str) -> list[FieldViolation]:
    """``value`` is a UUID in its canonical form (any case); ``what`` names it, e.g. "a user id"."""
    if isinstance(value, str) and _CANONICAL_UUID.fullmatch(value):
        return []
    return [(field, f"must be {what} (UUID)")]


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
