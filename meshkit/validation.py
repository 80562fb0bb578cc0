"""What every backend does with request fields once their proto rules passed: text normalisation and
page defaults. The rules themselves are in the protos, checked by
:mod:`meshkit.rpc.interceptors.validation` before a handler runs."""

from __future__ import annotations

import re
import unicodedata

PAGE_SIZE_DEFAULT = 20


def normalise(text: str) -> str:
    """NFC and outer whitespace trimmed: what we store and compare."""
    return unicodedata.normalize("NFC", text).strip()


# The canonical form, any case (what the protos' `string.uuid` rule accepts). ASCII hex only.
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_uuid(value: str) -> bool:
    """For code that runs before the rules are checked (a prefetch of cache keys): is ``value`` an id?"""
    return _CANONICAL_UUID.fullmatch(value) is not None


def page_or_default(page: int, page_size: int) -> tuple[int, int]:
    """0 is "not sent": the rules refuse an explicit 0 (``optional`` fields), so it takes the default."""
    return page or 1, page_size or PAGE_SIZE_DEFAULT
