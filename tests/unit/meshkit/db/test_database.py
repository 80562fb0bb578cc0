"""The SQLite side of ``Database``: a write transaction holds the write lock from its BEGIN, a failed
BEGIN is a SQLAlchemy error like any other, the process's writers queue for the lock (none loses the
race until its busy timeout), savepoints work, and a connection given back to the pool inside a
transaction is rolled back (the pool's own reset is replaced by one that only acts then)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError, OperationalError

from meshkit.db.database import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")

    @event.listens_for(database.engine.sync_engine, "connect")
    def _short_wait(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.cursor().execute("PRAGMA busy_timeout=100")  # after the 10 s of Database's own

    async with database.write() as session:
        await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    yield database
    await database.dispose()


async def ids(db: Database) -> list[int]:
    async with db.read() as session:
        return list((await session.execute(text("SELECT id FROM t ORDER BY id"))).scalars())


async def test_a_write_takes_the_lock_at_begin_and_a_refused_begin_is_an_operational_error(
    db: Database, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="locked"):  # classified as "the database blinked"
            async with db.write() as session:
                await session.execute(text("SELECT 1"))  # the first statement begins
        assert await ids(db) == []  # reads go on meanwhile (WAL)
    finally:
        other.execute("ROLLBACK")
        other.close()
    async with db.write() as session:
        await session.execute(text("INSERT INTO t (id) VALUES (1)"))
    assert await ids(db) == [1]


async def test_writers_queue_for_the_lock_longer_than_the_busy_timeout_in_all(db: Database) -> None:
    # Eight writers holding the lock 60 ms each: 480 ms in all against a busy timeout of 100 ms. Left to
    # SQLite's polling, the later ones give up with "database is locked"; queued, each commits.
    order: list[int] = []

    async def writer(n: int) -> None:
        async with db.write() as session:
            await session.execute(text("INSERT INTO t (id) VALUES (:id)"), {"id": n})
            order.append(n)
            await asyncio.sleep(0.06)  # a slow transaction: work on the event loop while holding the lock

    await asyncio.gather(*(writer(n) for n in range(8)))
    assert await ids(db) == list(range(8))
    assert order == list(range(8))  # in the order they came


async def test_a_writer_cancelled_while_queued_leaves_the_queue(db: Database) -> None:
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with db.write() as session:
            await session.execute(text("INSERT INTO t (id) VALUES (1)"))
            holding.set()
            await release.wait()

    async def queued() -> None:
        async with db.write() as session:
            await session.execute(text("INSERT INTO t (id) VALUES (2)"))

    first = asyncio.create_task(hold())
    await holding.wait()
    waiting = asyncio.create_task(queued())
    await asyncio.sleep(0.05)
    waiting.cancel()  # a call's deadline passing while it waits its turn
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    await first
    async with db.write() as session:
        await session.execute(text("INSERT INTO t (id) VALUES (3)"))
    assert await ids(db) == [1, 3]


async def test_a_write_inside_a_write_is_refused_at_once(db: Database) -> None:
    # It would wait for the lock its own transaction holds.
    async with db.write() as session:
        await session.execute(text("INSERT INTO t (id) VALUES (1)"))
        with pytest.raises(RuntimeError, match="inside another"):
            async with db.write():
                pass
    assert await ids(db) == [1]
    async with db.write() as session:  # and the lock is free again
        await session.execute(text("INSERT INTO t (id) VALUES (2)"))
    assert await ids(db) == [1, 2]


async def test_a_failed_savepoint_leaves_the_transaction_usable(db: Database) -> None:
    async with db.write() as session:
        await session.execute(text("INSERT INTO t (id) VALUES (1)"))
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                await session.execute(text("INSERT INTO t (id) VALUES (1)"))
        await session.execute(text("INSERT INTO t (id) VALUES (2)"))
    assert await ids(db) == [1, 2]


async def test_a_connection_returned_inside_a_transaction_is_rolled_back(db: Database) -> None:
    raw = await db.engine.raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.execute("BEGIN IMMEDIATE")
    await driver.execute("INSERT INTO t (id) VALUES (7)")
    raw.close()  # back to the pool mid-transaction: the reset rolls it back and frees the write lock
    async with db.write() as session:
        await session.execute(text("INSERT INTO t (id) VALUES (8)"))
    assert await ids(db) == [8]
