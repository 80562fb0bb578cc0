"""Work that must run to its end once begun, even when the call that began it goes away.

gRPC cancels a handler's task when its caller cancels or its deadline passes. Most work may stop there;
a few steps may not stop halfway: a profile created in one backend whose credential is not yet stored in
another can never log in, and holds its name and email. Such a step runs in a task of its own that the
caller awaits through :func:`asyncio.shield`: a caller that leaves gets its cancellation at once, and the
step goes on to its end (done, or taken back by its own compensation). The tasks are kept referenced
until they end (the event loop holds only weak references to tasks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import grpc

log = logging.getLogger(__name__)
T = TypeVar("T")


class Finishing:
    """The steps of one service that run to their end; :attr:`running` counts those still at work."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def run(self, step: Coroutine[Any, Any, T]) -> T:
        """``step``'s result, or its exception; cancelling the caller leaves ``step`` running."""
        task = asyncio.ensure_future(step)
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        return await asyncio.shield(task)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None and not isinstance(error, grpc.aio.AbortError):
            # The caller, if still there, gets it too; if it left, this is the only trace. (A status
            # chosen for the caller, such as ALREADY_EXISTS, is no failure.)
            log.info(
                "a step run to its end failed", extra={"kind": self._what, "error": type(error).__name__}
            )
