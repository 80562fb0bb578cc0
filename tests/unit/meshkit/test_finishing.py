"""Steps that run to their end: the caller may leave, the step goes on; its result or error reaches a
caller that stayed, and an error after the caller left is logged."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest

from meshkit.finishing import Finishing


async def test_a_cancelled_caller_leaves_the_step_running_to_its_end() -> None:
    finishing = Finishing("test")
    begun, go_on, ended = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def step() -> None:
        begun.set()
        await go_on.wait()
        ended.set()

    caller = asyncio.create_task(finishing.run(step()))
    await begun.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert finishing.running == 1
    go_on.set()
    await asyncio.wait_for(ended.wait(), 5)
    await asyncio.sleep(0)  # the done callback
    assert finishing.running == 0


async def test_a_caller_that_stays_gets_the_result_or_the_error() -> None:
    finishing = Finishing("test")

    async def answer() -> int:
        return 42

    async def fail() -> None:
        raise OSError("disk full")

    assert await finishing.run(answer()) == 42
    with pytest.raises(OSError, match="disk full"):
        await finishing.run(fail())


async def test_an_error_after_the_caller_left_is_logged_a_chosen_status_is_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="meshkit.finishing")
    finishing = Finishing("test")
    go_on = asyncio.Event()

    async def fail_later(error: BaseException) -> None:
        await go_on.wait()
        raise error

    for error in (OSError("disk full"), grpc.aio.AbortError()):
        caller = asyncio.create_task(finishing.run(fail_later(error)))
        await asyncio.sleep(0)
        caller.cancel()
    go_on.set()
    for _ in range(50):
        if not finishing.running:
            break
        await asyncio.sleep(0.01)
    logged = [
        (r.levelname, getattr(r, "error", None)) for r in caplog.records if r.name == "meshkit.finishing"
    ]
    assert logged == [("INFO", "OSError")]
