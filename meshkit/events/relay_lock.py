"""The outbox relay's lock on SQLite: an exclusive, non-blocking ``flock`` on a file beside the database.

PostgreSQL has transaction-scoped advisory locks. SQLite's only lock is its write lock, and a relay that
held it while waiting for Kafka's acknowledgements would hold up every request that writes (for the whole
publish timeout when Kafka has just died). A relay holds this lock instead: two relays on one SQLite
file, in one process or two, never publish the same rows, and writers never wait for Kafka.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ["lock_file", "try_lock"]


def lock_file(url: str, table: str) -> Path | None:
    """``<database file>.<table>.relay.lock`` for a SQLite file URL; None for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(f"{database}.{table}.relay.lock")


@contextlib.contextmanager
def try_lock(path: Path) -> Iterator[bool]:
    """Hold the lock for the block if nobody else does (yields True), else yield False at once."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
