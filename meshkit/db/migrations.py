"""Alembic migrations, run by each backend at start-up (``upgrade head``) and by its ``env.py``.

Each backend keeps its own migration folder and its own version table, so several backends can share
one PostgreSQL database without stepping on each other.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(url: str, script_location: Path, version_table: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["version_table"] = version_table
    return config


async def upgrade(url: str, script_location: Path, version_table: str) -> None:
    """``alembic upgrade head`` without blocking the event loop (Alembic's API is synchronous)."""
    config = alembic_config(url, script_location, version_table)
    await asyncio.to_thread(command.upgrade, config, "head")


def run_env(config: Config, target_metadata: MetaData) -> None:
    """Body of a backend's ``env.py``: migrate online through the async driver of the configured URL."""
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    version_table = config.attributes.get("version_table", "alembic_version")

    def migrate(connection: Connection) -> None:
        from alembic import context

        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=version_table,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Several replicas may start at once: one migrates, the others wait and find it done.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": version_table}
                )
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
            await connection.commit()
        await engine.dispose()

    # Called from upgrade() inside asyncio.to_thread, so this thread has no running loop of its own.
    asyncio.run(run())
