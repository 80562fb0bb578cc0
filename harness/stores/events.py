"""A database with the kit's event tables under a unique prefix, created the way a backend creates them.

Each use writes a one-revision Alembic folder whose migration calls ``create_kit_tables(op, prefix)``
(exactly what a backend's migration does), runs it with the kit's ``upgrade``, and downgrades at the end,
so tests on the shared PostgreSQL database never see each other's rows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from sqlalchemy import MetaData, Table, text

from meshkit.db.database import Database
from meshkit.db.migrations import alembic_config, upgrade
from meshkit.events.tables import outbox_table, processed_events_table

ENV_PY = """\
from alembic import context
from sqlalchemy import MetaData

from meshkit.db.migrations import run_env

run_env(context.config, MetaData())
"""

VERSION_PY = '''\
"""Kit event tables."""

from alembic import op

from meshkit.events.tables import create_kit_tables, drop_kit_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_kit_tables(op, {prefix!r})


def downgrade() -> None:
    drop_kit_tables(op, {prefix!r})
'''


@dataclass
class EventsDb:
    db: Database
    prefix: str
    metadata: MetaData
    outbox: Table
    processed: Table

    @property
    def dialect(self) -> str:
        return self.db.dialect


def write_migrations(folder: Path, prefix: str) -> Path:
    """An Alembic script folder with the one migration a backend would write."""
    (folder / "versions").mkdir(parents=True, exist_ok=True)
    (folder / "env.py").write_text(ENV_PY)
    (folder / "versions" / "0001_kit_tables.py").write_text(VERSION_PY.format(prefix=prefix))
    return folder


def database_url(kind: str, tmp_path: Path, postgres_url: str) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'events.db'}" if kind == "sqlite" else postgres_url


@asynccontextmanager
async def events_db(url: str, tmp_path: Path, prefix: str | None = None) -> AsyncIterator[EventsDb]:
    """Migrate the kit tables in, yield them, then migrate them out (and drop the version table)."""
    prefix = prefix or f"t{uuid.uuid4().hex[:12]}"
    scripts = write_migrations(tmp_path / f"migrations_{prefix}", prefix)
    version_table = f"{prefix}_alembic_version"
    await upgrade(url, scripts, version_table)
    db = Database(url)
    metadata = MetaData()
    try:
        yield EventsDb(
            db, prefix, metadata, outbox_table(metadata, prefix), processed_events_table(metadata, prefix)
        )
    finally:
        await db.dispose()
        config = alembic_config(url, scripts, version_table)
        await asyncio.to_thread(command.downgrade, config, "base")
        cleanup = Database(url)
        try:
            async with cleanup.write() as session:
                await session.execute(text(f"DROP TABLE IF EXISTS {version_table}"))
        finally:
            await cleanup.dispose()
