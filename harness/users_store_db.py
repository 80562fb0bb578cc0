"""The users backend's migrated database for store tests (see :mod:`harness.backend_db`)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from harness.backend_db import DIALECTS, backend_database, migrate_backend
from meshkit.db.database import Database

__all__ = ["DIALECTS", "VERSION_TABLE", "migrate", "users_database"]

VERSION_TABLE = "users_alembic_version"


async def migrate(url: str) -> None:
    await migrate_backend("users", url)


def users_database(
    request: pytest.FixtureRequest, tmp: Path, revision: str = "head"
) -> AbstractAsyncContextManager[Database]:
    return backend_database("users", request, tmp, revision)
