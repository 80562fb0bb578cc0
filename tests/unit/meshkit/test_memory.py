"""Freed memory handed back to the system: ``malloc_trim`` on glibc, nothing elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import platform

import pytest

from meshkit import memory


def test_freed_heap_blocks_are_given_back() -> None:
    # Portico runs on glibc (Debian, the container image): there the trim must be found, never skipped.
    assert platform.libc_ver()[0] == "glibc"
    assert memory._TRIM is not None
    # Blocks under glibc's mmap threshold come from the heap and stay there once freed.
    blocks = [bytearray(64 * 1024) for _ in range(512)]
    del blocks
    assert memory.release_free_memory()


def test_without_glibc_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_TRIM", None)
    assert not memory.release_free_memory()


async def test_release_periodically_trims_until_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []
    three = asyncio.Event()

    def trim(pad: int) -> int:
        trims.append(pad)
        if len(trims) == 3:
            three.set()
        return 0

    monkeypatch.setattr(memory, "_TRIM", trim)
    task = asyncio.create_task(memory.release_periodically(interval=0))
    await three.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert trims[:3] == [0, 0, 0]
