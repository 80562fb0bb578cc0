"""The relay's ordering rule: send in order without waiting, count as delivered only the acked prefix."""

from __future__ import annotations

import asyncio
from typing import Any

from meshkit.events.delivery import deliver


class Sends:
    """A fake producer: records the send order, acks each record after ``delays[record]`` seconds."""

    def __init__(self, delays: dict[int, float | None], fail: dict[int, Exception] | None = None) -> None:
        self.delays = delays  # None: never acknowledged
        self.fail = fail or {}
        self.refuse: set[int] = set()
        self.order: list[int] = []
        self.futures: dict[int, asyncio.Future[Any]] = {}

    async def send(self, record: int) -> asyncio.Future[Any]:
        if record in self.refuse:
            raise ConnectionError("not connected")
        self.order.append(record)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.futures[record] = future
        delay = self.delays[record]
        if delay is not None:
            if record in self.fail:
                loop.call_later(delay, future.set_exception, self.fail[record])
            else:
                loop.call_later(delay, future.set_result, f"offset-{record}")
        return future


async def test_acks_arriving_out_of_order_still_deliver_everything_in_order() -> None:
    sends = Sends({1: 0.03, 2: 0.02, 3: 0.01})
    delivery = await deliver([1, 2, 3], sends.send, timeout=2)
    assert sends.order == [1, 2, 3]
    assert delivery.acked == [1, 2, 3]
    assert delivery.failed == []
    assert delivery.error is None
    assert delivery.unresolved == []


async def test_a_failed_ack_stops_the_delivered_prefix_even_if_later_ones_succeeded() -> None:
    sends = Sends({1: 0.0, 2: 0.01, 3: 0.0}, fail={2: RuntimeError("broker said no")})
    delivery = await deliver([1, 2, 3], sends.send, timeout=2)
    assert delivery.acked == [1]
    assert delivery.failed == [2, 3]  # 3 stays pending: marking it would publish it "before" 2
    assert delivery.error == "RuntimeError: broker said no"


async def test_a_refused_send_stops_sending() -> None:
    sends = Sends({1: 0.0, 2: 0.0, 3: 0.0})
    sends.refuse.add(2)
    delivery = await deliver([1, 2, 3], sends.send, timeout=2)
    assert sends.order == [1]
    assert delivery.acked == [1]
    assert delivery.failed == [2, 3]
    assert delivery.error == "ConnectionError: not connected"


async def test_unanswered_sends_time_out_and_are_handed_back() -> None:
    sends = Sends({1: 0.0, 2: None, 3: 0.0})
    delivery = await deliver([1, 2, 3], sends.send, timeout=0.2)
    assert delivery.acked == [1]
    assert delivery.failed == [2, 3]
    assert delivery.error == "not acknowledged within 0.2s"
    assert delivery.unresolved == [sends.futures[2]]
    assert not sends.futures[2].cancelled()  # the producer may still deliver it: never cancelled
    sends.futures[2].set_exception(RuntimeError("late"))  # retrieved by deliver's callback: no warning
    await asyncio.sleep(0)


async def test_nothing_to_send() -> None:
    nothing: list[int] = []
    delivery = await deliver(nothing, Sends({}).send, timeout=1)
    assert (delivery.acked, delivery.failed, delivery.error) == ([], [], None)
