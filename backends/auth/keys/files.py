"""Careful file I/O for secrets: a private directory, atomic 0600 writes, an exclusive lock.

Several auth replicas and the rotation CLI share one directory, so every write is a rename (readers see
the old file or the new one, never half of one) and every change of the key set happens under a lock.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from backends.auth.keys.errors import KeyStoreError

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
LOCK_FILE = ".lock"


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` as 0700 when it is missing; an existing directory is left as it is."""
    if not directory.exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
            # mkdir's mode passes through the umask; set it exactly.
            os.chmod(directory, PRIVATE_DIR_MODE)
        except FileExistsError:  # another replica created it first
            pass
    if not directory.is_dir():
        raise KeyStoreError(f"keys directory {directory} is not a directory")


def _fsync_dir(directory: Path) -> None:
    # Makes a rename or unlink durable: without it a crash can bring the old directory entry back.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600): temp file in the same directory, fsync, rename."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), PRIVATE_FILE_MODE)  # exact, whatever the umask
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def read_file(path: Path) -> tuple[bytes, os.stat_result]:
    """The content of ``path`` and the status of the very file read (no race with a rename)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as src:
        return src.read(), os.fstat(src.fileno())


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    _fsync_dir(path.parent)


@contextmanager
def exclusive_lock(directory: Path) -> Iterator[None]:
    """Serialize changes to the key set between processes (advisory ``flock`` on a lock file)."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
