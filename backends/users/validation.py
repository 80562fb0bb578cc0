"""Validation of user fields exactly as the contract states them; pure functions.

Each check returns ``(field, description)`` violations so a request with several problems reports all
of them at once.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from meshkit.rpc.status import FieldViolation
from meshkit.validation import (
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    check_page,
    check_uuid,
    normalise,
    page_or_default,
)

# The shared checks are part of the users checks (the service and tests call them through ``v``).
__all__ = ["PAGE_SIZE_DEFAULT", "PAGE_SIZE_MAX", "check_page", "normalise", "page_or_default"]

EMAIL_MAX = 255
TENANT = re.compile(r"^[A-Za-z0-9_-]{1,50}$")
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
PHONE = re.compile(r"^\+[1-9][0-9]{1,14}$")  # E.164
# Practical address check: one "@", no spaces, a dotted domain of LDH labels (RFC 5321 sizes).
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?=.{1,253}$)"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
# Space, hyphen, apostrophe and the typographic apostrophe (U+2019) may join name parts.
NAME_SEPARATORS = frozenset(" '-\u2019")
ASSIGNABLE_ROLES = frozenset({"user", "admin"})
AVATAR_URL_MAX = 2048
QUERY_MIN, QUERY_MAX = 2, 100


def check_email(value: str, field: str = "email") -> list[FieldViolation]:
    if len(value) > EMAIL_MAX:
        return [(field, f"must be at most {EMAIL_MAX} characters")]
    return [] if EMAIL.match(value) else [(field, "must be a valid email address")]


def check_username(value: str, field: str = "username") -> list[FieldViolation]:
    if USERNAME.match(value):
        return []
    return [(field, "must be 3-32 characters of letters, digits, '_', '.' or '-'")]


def check_name(value: str, field: str) -> list[FieldViolation]:
    if not 1 <= len(value) <= 100:
        return [(field, "must be 1-100 characters")]
    if not _is_name(value):
        return [(field, "must contain only letters, with spaces, hyphens or apostrophes between words")]
    return []


def _is_name(value: str) -> bool:
    # Letters of any script, combining marks inside a word, and single separators between words.
    previous_separator = True
    for char in value:
        category = unicodedata.category(char)
        if category.startswith("L"):
            previous_separator = False
        elif category.startswith("M") and not previous_separator:
            continue
        elif char in NAME_SEPARATORS and not previous_separator:
            previous_separator = True
        else:
            return False
    return not previous_separator


def check_phone(value: str, field: str = "phone") -> list[FieldViolation]:
    return [] if PHONE.match(value) else [(field, "must be in E.164 format, e.g. +1234567890")]


def check_avatar_url(value: str, field: str = "avatar_url") -> list[FieldViolation]:
    parts = urlsplit(value)
    if len(value) > AVATAR_URL_MAX or parts.scheme not in ("http", "https") or not parts.netloc:
        return [(field, f"must be an http(s) URL of at most {AVATAR_URL_MAX} characters")]
    return []


def check_roles(values: list[str], field: str = "roles") -> list[FieldViolation]:
    unknown = sorted(set(values) - ASSIGNABLE_ROLES)
    if unknown:
        return [(field, f"unknown roles {unknown}; allowed: {sorted(ASSIGNABLE_ROLES)}")]
    return []


def check_tenant(value: str, field: str = "tenant_id") -> list[FieldViolation]:
    return [] if TENANT.match(value) else [(field, "must be 1-50 characters of letters, digits, '_' or '-'")]


def check_id(value: str, field: str = "user_id") -> list[FieldViolation]:
    return check_uuid(value, field, "a user id")


def check_query(q: str) -> list[FieldViolation]:
    if not QUERY_MIN <= len(q.strip()) <= QUERY_MAX:
        return [("q", f"must be {QUERY_MIN}-{QUERY_MAX} characters")]
    return []


def username_from_email(email: str) -> str:
    """A valid username derived from the address's local part (CreateUser does not require one)."""
    local = re.sub(r"[^A-Za-z0-9_.-]", "", email.partition("@")[0])[:32]
    return local if len(local) >= 3 else (local + "user")[:32]
