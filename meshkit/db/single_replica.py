"""SQLite serves one replica: a backend on a SQLite file holds an exclusive lock on ``<file>.lock`` for its
whole life, so a second process on the same file stops at start with a clear message instead of sharing
the file (two writers queue on SQLite's one write lock, and each keeps its own caches and outbox relay).

The lock is ``flock`` on a file beside the database: the kernel releases it when the process ends, even by
SIGKILL, so a restarted backend never finds a stale lock. PostgreSQL needs none of this.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

REFUSAL = "SQLite serves one replica; use PostgreSQL (PORTICO_DATABASE_URL) for more"


class DatabaseHeld(RuntimeError):
    """Another process serves from the same SQLite file."""


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database or an in-memory SQLite."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if "mode=memory" in url:
        return None
    return Path(database)


def hold_sqlite(url: str) -> IO[str] | None:
    """Take the file's lock for this process (keep the returned handle open until exit); None when
    ``url`` is no SQLite file. Raises :class:`DatabaseHeld` when another process holds it."""
    path = sqlite_file(url)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.with_name(f"{path.name}.lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DatabaseHeld(f"{REFUSAL}: another process serves from {path}") from None
    return handle
