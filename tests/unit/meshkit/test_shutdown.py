"""The shutdown deadline: bounded steps move on past a hang, and the watchdog ends a process that hangs
where no bound reaches, naming the step it was waiting for."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from meshkit.shutdown import EXIT_CODE, ShutdownDeadline


async def test_a_hung_step_is_given_up_and_the_next_steps_still_run(caplog: pytest.LogCaptureFixture) -> None:
    deadline = ShutdownDeadline(0.5, margin=1.0, exit=lambda code: None)
    deadline.arm()
    ran: list[str] = []

    async def hangs() -> None:
        await asyncio.Event().wait()

    async def closes() -> None:
        ran.append("closed")

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, "meshkit.shutdown"):
        assert not await deadline.bounded("kafka broker stop", hangs(), cap=0.2)
        assert await deadline.bounded("redis close", closes())
    assert time.monotonic() - started < 0.5
    assert ran == ["closed"]
    assert any(getattr(r, "step", None) == "kafka broker stop" for r in caplog.records)
    deadline.finish()


async def test_a_step_that_ignores_cancellation_does_not_hold_the_shutdown() -> None:
    deadline = ShutdownDeadline(0.2, margin=0.5, exit=lambda code: None)
    deadline.arm()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(1.5)  # a step that takes its time to honour a cancellation

    started = time.monotonic()
    assert not await deadline.bounded("background task relay", stubborn())
    assert time.monotonic() - started < deadline.limit
    deadline.finish()
    await asyncio.sleep(1.5)  # let it end before the test's loop closes


async def test_a_failing_step_is_logged_and_passed() -> None:
    async def fails() -> None:
        raise OSError("connection reset")

    assert not await ShutdownDeadline(1.0).bounded("redis close", fails())


def test_the_watchdog_exits_naming_the_pending_step(caplog: pytest.LogCaptureFixture) -> None:
    exited = threading.Event()
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        exited.set()

    deadline = ShutdownDeadline(0.1, margin=0.2, exit=fake_exit)
    with caplog.at_level(logging.ERROR, "meshkit.shutdown"):
        deadline.arm()
        deadline.enter("password hashing pool")
        assert exited.wait(5)
    assert codes == [EXIT_CODE]
    assert [getattr(r, "waiting_for", None) for r in caplog.records] == ["password hashing pool"]


def test_a_finished_shutdown_stands_the_watchdog_down() -> None:
    codes: list[int] = []
    deadline = ShutdownDeadline(0.05, margin=0.05, exit=codes.append)
    deadline.arm()
    deadline.finish()
    time.sleep(0.3)
    assert codes == []
    assert deadline.remaining() == 0.0
