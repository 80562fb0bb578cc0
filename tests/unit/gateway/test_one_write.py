"""A response's head and body leave in one write; a head alone (a stream's) leaves at the end of the
event loop's turn; later writes go straight through; a close writes what is held first."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from gateway.one_write import CoalescingTransport


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def _coalescing(recorder: Recorder) -> CoalescingTransport:
    return CoalescingTransport(cast(Any, recorder), asyncio.get_running_loop())


async def test_head_and_body_sent_together_are_one_write() -> None:
    recorder = Recorder()
    transport = _coalescing(recorder)
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(memoryview(b"{}"))
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
    await asyncio.sleep(0)
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]  # nothing left to flush


async def test_a_head_alone_leaves_at_the_end_of_the_turn_and_later_writes_go_straight_through() -> None:
    recorder = Recorder()
    transport = _coalescing(recorder)
    transport.write(b"head")
    assert recorder.writes == []
    await asyncio.sleep(0)
    assert recorder.writes == [b"head"]
    transport.write(b"event 1")
    transport.write(b"event 2")
    assert recorder.writes == [b"head", b"event 1", b"event 2"]


async def test_closing_writes_the_held_head_first() -> None:
    recorder = Recorder()
    transport = _coalescing(recorder)
    transport.write(b"head")
    transport.close()
    assert recorder.writes == [b"head"]
    assert transport.is_closing()
    await asyncio.sleep(0)  # the scheduled flush finds nothing held
    assert recorder.writes == [b"head"]
