"""Database access for backends: SQLAlchemy 2 async, SQLite by default, PostgreSQL by URL.

Writers and readers get different sessions because SQLite needs it: a deferred transaction that later
writes can fail with "database is locked" when another writer committed in between, so write
transactions start with ``BEGIN IMMEDIATE`` (take the write lock up front) while reads stay deferred
and, in WAL mode, never block. On PostgreSQL both are ordinary transactions.

On SQLite the write transactions of the process also take turns in an asyncio queue before their BEGIN.
SQLite's own wait for its lock is a poll (sleeps of up to 100 ms), not a queue: under a login storm a
writer could lose every round to later ones until its busy timeout ran out, and the call failed with
"database is locked" while others went through. Queued, a writer waits for those ahead of it only, and
for as long as its caller allows (a call's deadline cancels the wait). One process per SQLite file is
enforced (:mod:`meshkit.db.single_replica`), so the queue holds every writer of the file but tools.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Table, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import PoolResetState
from sqlalchemy.util import await_

from meshkit.config.stores import run_dir

_BEGIN_OPTION = "portico_sqlite_begin"


def default_url(backend: str) -> str:
    """SQLite file of ``backend`` under the run directory (``PORTICO_RUN_DIR``, default ``.run/``)."""
    directory = run_dir()
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{directory / f'{backend}.db'}"


DIALECTS = ("sqlite", "postgresql")


def supported_dialect(dialect: str) -> str:
    """``dialect`` when the stores support it (``Database.dialect`` values), else ValueError."""
    if dialect not in DIALECTS:
        raise ValueError(f"unsupported dialect {dialect!r}")
    return dialect


def dialect_insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with ``on_conflict_do_*``: both dialects have it, each in its own construct."""
    return postgresql.insert(table) if supported_dialect(dialect) == "postgresql" else sqlite.insert(table)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


# Connections a SQLite file keeps open. Past SQLAlchemy's default of 5, every connection was opened and
# closed again per checkout (a thread, the file, the schema, four PRAGMAs): a login storm of 8 spent as
# much CPU there as on its password hashes. Writers queue for the one write lock holding a connection.
_SQLITE_FILE_POOL = {"pool_size": 20, "max_overflow": 20}


def _is_file(url: str) -> bool:
    """A SQLite URL naming a file (an in-memory database has a single static connection)."""
    database = make_url(url).database
    return bool(database) and database != ":memory:" and "mode=memory" not in url


def _make_sqlite_transactional(engine: AsyncEngine) -> None:
    """pysqlite's own BEGIN handling breaks savepoints and locking; emit BEGIN ourselves (SQLAlchemy docs)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=10000", "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        statement = f"BEGIN {mode}"
        # Straight to aiosqlite: one trip to its thread where a SQLAlchemy cursor takes three (open,
        # execute, close); every transaction pays it. Errors are wrapped as SQLAlchemy wraps them.
        driver = connection.connection.driver_connection
        assert driver is not None  # a connection that has begun is checked out
        try:
            await_(driver.execute(statement))
        except sqlite3.Error as exc:
            raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
        # The pool's own reset (pool_reset_on_return=None here) rolls back every connection it gets back,
        # one more trip to aiosqlite's thread after each commit; only one left inside a transaction needs it.
        if not state.terminate_only and dbapi_connection.driver_connection.in_transaction:
            dbapi_connection.rollback()


class Database:
    """The engine of one backend and its reader/writer session factories."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        if is_sqlite(url):
            self.engine = create_async_engine(
                url,
                echo=echo,
                connect_args={"timeout": 30},
                pool_reset_on_return=None,
                **(_SQLITE_FILE_POOL if _is_file(url) else {}),
            )
            _make_sqlite_transactional(self.engine)
            writer_engine = self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        else:
            self.engine = create_async_engine(
                url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True
            )
            writer_engine = self.engine
        self._readers = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writers = async_sessionmaker(writer_engine, expire_on_commit=False)
        self._write_turn = asyncio.Lock() if is_sqlite(url) else None
        self._writing: asyncio.Task[Any] | None = None  # the task whose write transaction is open

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed on success and rolled back on error (on SQLite,
        after the writers queued before it)."""
        if self._write_turn is None:
            async with self._writers() as session, session.begin():
                yield session
            return
        task = asyncio.current_task()
        if task is not None and task is self._writing:
            # SQLite's one write lock is this task's already: waiting for it would never end.
            raise RuntimeError("a write transaction inside another one on SQLite")
        async with self._write_turn:
            self._writing = task
            try:
                async with self._writers() as session, session.begin():
                    yield session
            finally:
                self._writing = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (its transaction is rolled back at the end)."""
        async with self._readers() as session:
            yield session

    async def ping(self) -> bool:
        async with self.read() as session:
            await session.connection()
            return True

    async def dispose(self) -> None:
        await self.engine.dispose()
