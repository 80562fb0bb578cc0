"""The auth backend's migrated database for store tests (see :mod:`harness.stores.databases`)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from harness.stores.databases import DIALECTS, backend_database, migrate_backend
from meshkit.db.database import Database

__all__ = ["DIALECTS", "VERSION_TABLE", "auth_database", "migrate"]

VERSION_TABLE = "auth_alembic_version"
TABLES = (
    "credentials",
    "refresh_families",
    "refresh_tokens",
    "revocations",
    "auth_outbox",
    "auth_processed_events",
)


async def migrate(url: str) -> None:
    await migrate_backend("auth", url)


def auth_database(
    request: pytest.FixtureRequest, tmp: Path, revision: str = "head"
) -> AbstractAsyncContextManager[Database]:
    return backend_database("auth", request, tmp, revision)
