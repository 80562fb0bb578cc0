"""A shutdown with a hard deadline: whatever hangs, the process exits within its grace plus a margin.

Armed when SIGTERM (or SIGINT) arrives. Each step of the shutdown is named as it starts, and the awaitable
ones are bounded by the time left (:meth:`ShutdownDeadline.bounded`), so one step that hangs (a Kafka
flush, a Redis close, a channel) costs its share and the next steps still run. What no bound can reach —
a blocked event loop, the interpreter joining worker threads at exit — is covered by a daemon thread: when
the deadline passes it logs the step still pending and every thread's stack, then ends the process with
``os._exit``, so a replacement can bind the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

log = logging.getLogger(__name__)

MARGIN = 2.0  # the promise: a process exits within its grace plus this, counted from the signal
# The watchdog fires this much before the promise: the signal waits for the event loop before it arms the
# clock, and ending the process takes a moment too.
SLACK = 0.5
RESERVE = 0.5  # kept back from bounded steps, so a normal exit beats the watchdog
EXIT_CODE = 70  # EX_SOFTWARE: the shutdown did not finish by itself


def accept_lead(grace: float) -> float:
    """Seconds a stopping server still takes the requests already sent to it before it stops accepting (a
    share of a short grace): a request in flight when the signal arrives is answered, not cut off."""
    return min(0.5, grace / 4)


class ShutdownDeadline:
    """The deadline of one process's shutdown: ``grace`` for in-flight work, then ``margin`` for the rest."""

    def __init__(
        self,
        grace: float,
        *,
        margin: float = MARGIN,
        exit: Callable[[int], Any] | None = None,  # replaced in tests
    ) -> None:
        self.grace = grace
        self.limit = grace + margin - min(SLACK, margin / 4)  # when the watchdog ends the process
        self._exit = exit or exit_now
        self._armed_at: float | None = None
        self._step = "starting shutdown"
        self._lock = threading.Lock()
        self._done = threading.Event()

    @property
    def pending(self) -> str:
        """The step the shutdown is in (what it waits for, if it hangs)."""
        return self._step

    def arm(self) -> None:
        """Start the clock (once) and the watchdog thread."""
        with self._lock:
            if self._armed_at is not None:
                return
            self._armed_at = time.monotonic()
        threading.Thread(target=self._watch, name="shutdown-deadline", daemon=True).start()

    def remaining(self) -> float:
        """Seconds left before the watchdog ends the process (the whole limit before arming)."""
        if self._armed_at is None:
            return self.limit
        return max(0.0, self.limit - (time.monotonic() - self._armed_at))

    def enter(self, step: str) -> None:
        """Name the step now running."""
        self._step = step
        log.debug("shutdown step", extra={"step": step})

    @contextmanager
    def step(self, step: str) -> Iterator[None]:
        """A synchronous step: named while it runs (the watchdog covers it if it blocks)."""
        self.enter(step)
        yield

    async def bounded(self, step: str, awaitable: Awaitable[Any], cap: float | None = None) -> bool:
        """Await ``awaitable`` for at most ``cap`` seconds and the time left (less a reserve); log and go on
        when it times out or fails, since the steps after it must still run. True when it finished."""
        self.enter(step)
        timeout = max(0.0, self.remaining() - RESERVE)
        if cap is not None:
            timeout = min(timeout, cap)
        # Not wait_for: on a timeout it waits for the cancelled step to end, which a hung step never does.
        task = asyncio.ensure_future(awaitable)
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
            log.warning("shutdown step did not finish in time", extra={"step": step, "waited_s": timeout})
            return False
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("shutdown step failed", extra={"step": step, "error": type(error).__name__})
            return False
        return True

    def finish(self) -> None:
        """The shutdown is over: the watchdog stands down (the process is about to exit normally)."""
        self._done.set()

    def _watch(self) -> None:
        if self._done.wait(self.limit):
            return
        log.error(
            "shutdown deadline passed; exiting now",
            extra={"waiting_for": self._step, "grace_s": self.grace, "deadline_s": self.limit},
        )
        # Every thread's stack says where it hangs; stderr is the process log.
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        self._exit(EXIT_CODE)


def exit_now(code: int = 0) -> NoReturn:
    """End the process at once, after flushing the logs: no interpreter teardown.

    Used once a shutdown has closed what it owns. The teardown would only join threads that nothing
    stops any more (a worker thread of a database connection a cancelled call left open waits for work
    forever), and collect the whole heap, which took over a second under load."""
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
