"""A response's head and body in one write to the socket.

uvicorn writes a response's head when the app sends ``http.response.start`` and its body when the app
sends ``http.response.body``: two ``send`` calls, two TCP segments and two wake-ups of the client, for
an answer the app hands over in one go (Starlette sends the two messages back to back, without
yielding to the event loop). So the first write of a response cycle is held until the cycle's next
write, which then carries both, or until the end of the event loop's turn, so that a stream's head
still leaves before its first event is waited for. Every later write goes straight through: nothing
is held once the head has left, and closing writes what is held first.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescingTransport:
    """One response cycle's view of its connection's transport (the connection keeps the real one)."""

    __slots__ = ("_first", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | bytearray | memoryview | None = None
        self._first = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            data, self._held = b"".join((self._held, data)), None
        elif self._first:
            self._first = False
            self._held = data
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        """Write the held head now (the end of its turn, or a close)."""
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, …: the real transport's
        return getattr(self._transport, name)
