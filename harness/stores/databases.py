"""A migrated backend database for store tests: a SQLite file, or a fresh database on the session's server.

Each test module gets its own PostgreSQL database (the server is shared with other tests), dropped at
the end.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection, make_url

from infra.paths import REPO_ROOT
from meshkit.db.database import Database
from meshkit.db.migrations import alembic_config, upgrade

ROOT = REPO_ROOT
DIALECTS = [pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.infra)]


def _admin_dsn(url: str) -> str:
    """asyncpg's DSN for the server's maintenance database ``postgres``."""
    return (
        make_url(url).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    )


async def create_postgres_database(server_url: str, prefix: str) -> str:
    """A new empty database on the server of ``server_url``; its SQLAlchemy URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    connection = await asyncpg.connect(_admin_dsn(server_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    connection = await asyncpg.connect(_admin_dsn(url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await connection.close()


async def migrate_backend(backend: str, url: str, revision: str = "head") -> None:
    """``backend``'s migrations up to ``revision`` (a test of a migration starts from the one before)."""
    scripts, version_table = ROOT / "backends" / backend / "migrations", f"{backend}_alembic_version"
    if revision == "head":
        await upgrade(url, scripts, version_table)
    else:
        config = alembic_config(url, scripts, version_table)
        await asyncio.to_thread(command.upgrade, config, revision)


@asynccontextmanager
async def backend_database(
    backend: str, request: pytest.FixtureRequest, tmp: Path, revision: str = "head"
) -> AsyncIterator[Database]:
    """``backend``'s :class:`Database` of the dialect ``request.param`` (sqlite or postgresql), migrated up
    to ``revision``."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / f'{backend}.db'}"
    else:
        url = await create_postgres_database(
            request.getfixturevalue("infra").database_url, f"{backend}_store"
        )
    try:
        await migrate_backend(backend, url, revision)
        database = Database(url)
        try:
            yield database
        finally:
            await database.dispose()
    finally:
        if request.param == "postgresql":
            await drop_postgres_database(url)


async def schema_differences(db: Database, metadata: MetaData, version_table: str) -> list[object]:
    """What Alembic's autogenerate would change to make the migrated database match ``metadata``
    (the models); column comments left out, as they document the models only."""

    def ours(name: str | None, type_: str, parent: object) -> bool:
        return not (type_ == "table" and name == version_table)

    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"include_name": ours})
        return list(compare_metadata(context, metadata))

    async with db.engine.connect() as connection:
        differences = await connection.run_sync(diff)
    return [d for d in differences if "comment" not in str(d)]
