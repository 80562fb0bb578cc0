"""The users backend's migrated database for store tests (see :mod:`harness.stores.databases`), and search
queries meant to break a full-text query parser."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from harness.stores.databases import DIALECTS, backend_database, migrate_backend
from meshkit.db.database import Database

__all__ = ["DIALECTS", "HOSTILE_QUERIES", "VERSION_TABLE", "migrate", "users_database"]

VERSION_TABLE = "users_alembic_version"


async def migrate(url: str) -> None:
    await migrate_backend("users", url)


def users_database(
    request: pytest.FixtureRequest, tmp: Path, revision: str = "head"
) -> AbstractAsyncContextManager[Database]:
    return backend_database("users", request, tmp, revision)


# Each must give results or none, never an error.
HOSTILE_QUERIES = [
    '"',
    '""',
    '"' * 100,
    '"John',
    'John"',
    '"John" "Doe',
    "'",
    "''; DROP TABLE users; --",
    "' OR '1'='1",
    "1; SELECT * FROM users",
    "\x00\x00",
    "jo\x00hn",
    "*",
    "john*",
    "^john",
    "john:",
    "email:john",
    "search_email:john",
    "{search_name search_email}:john",
    "- john",
    "-john +doe",
    "john + doe",
    "(john",
    "john)",
    "((()))",
    "NEAR(john doe)",
    "NEAR(john doe, 2)",
    "john NEAR doe",
    "AND",
    "OR",
    "NOT",
    "john AND",
    "OR doe",
    "john NOT doe",
    "john & doe | !x",
    "john <-> doe",
    "john:* & doe:A",
    "!!!",
    "...",
    "@@",
    "%_%",
    "\\",
    "\\x00",
    "$$",
    "😀😀",
    "👨‍👩‍👧 family",
    "\u200b\u200b",
    "\t\n",
    "ﷺ",
    "ﬃ",
    "\u0301\u0301",
    "Ω≈ç√∫",
    "\U0001d55b\U0001d560\U0001d559\U0001d55f",
    "a" * 100,
    "a " * 50,
    "x" + "\U0010ffff" * 10,
]
