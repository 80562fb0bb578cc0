"""Alembic migrations, run by each backend at start-up (``upgrade head``) and by its ``env.py``.

Each backend keeps its own migration folder and its own version table, so several backends can share
one PostgreSQL database without stepping on each other.

Alembic (with Mako and Pygments behind it: about 12 MiB and a second of CPU per process) is imported
only when the database is not at head already: the heads are read from the scripts' text, the database's
from its version table, and any doubt (a script this reader cannot follow, no table, an error) migrates.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import MetaData, column, pool, select, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config


def script_heads(script_location: Path) -> frozenset[str] | None:
    """The head revisions of the scripts in ``<script_location>/versions``, from their module-level
    ``revision`` and ``down_revision`` literals; None when a script does not declare them so."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (script_location / "versions").glob("*.py"):
        found: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target: ast.expr
            if isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            else:
                continue
            if isinstance(target, ast.Name):
                try:
                    found[target.id] = ast.literal_eval(value)
                except ValueError:
                    continue
        revision, down = found.get("revision"), found.get("down_revision")
        if not isinstance(revision, str) or "down_revision" not in found:
            return None
        revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple | list) and all(isinstance(d, str) for d in down):
            parents.update(down)
        elif down is not None:
            return None
    return frozenset(revisions - parents) if revisions else None


async def at_head(url: str, script_location: Path, version_table: str) -> bool:
    """True when the database's version table holds exactly the scripts' heads; False otherwise,
    including when it cannot be read (the migration then finds out and reports)."""
    heads = script_heads(script_location)
    if heads is None:
        return False
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            versions = table(version_table, column("version_num"))
            rows = await connection.execute(select(versions.c.version_num))
            found = frozenset(str(value) for value in rows.scalars())
    except (OSError, SQLAlchemyError):
        return False
    finally:
        await engine.dispose()
    return found == heads


def alembic_config(url: str, script_location: Path, version_table: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["version_table"] = version_table
    return config


async def upgrade(url: str, script_location: Path, version_table: str) -> None:
    """``alembic upgrade head`` without blocking the event loop (Alembic's API is synchronous), unless
    the database is at head already."""
    if await at_head(url, script_location, version_table):
        return
    from alembic import command

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
