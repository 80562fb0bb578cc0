"""Sign-ups through a real auth stack from a few threads, counted as they finish, so a fault scenario can
kill something once a given number is done and still wait for every one of them.

    driver = SignUps(stack, tenant, password)
    with driver.running(count=300, workers=4) as all_done:
        await driver.reached(100)   # then kill Kafka, a broker, ...
        await asyncio.wait_for(all_done, 180)
    driver.registered, driver.failures
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import grpc

from harness.auth import AuthStack


class SignUps:
    """Registers ``user<n>`` in one tenant; keeps the new user ids and the status codes of refusals."""

    def __init__(self, stack: AuthStack, tenant: str, password: str) -> None:
        self.stack, self.tenant, self.password = stack, tenant, password
        self.registered: list[str] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()

    def sign_up(self, n: int) -> None:
        try:
            reply = self.stack.register(self.tenant, f"user{n}", self.password)
        except grpc.RpcError as exc:
            with self._lock:
                self.failures.append(str(exc.code()))
            return
        with self._lock:
            self.registered.append(reply.user.id)

    def done(self) -> int:
        """Sign-ups finished so far, served or refused."""
        with self._lock:
            return len(self.registered) + len(self.failures)

    def ids(self) -> set[str]:
        """A snapshot of the users registered so far."""
        with self._lock:
            return set(self.registered)

    async def reached(self, count: int, timeout: float = 120) -> None:
        """Return once ``count`` sign-ups have finished; TimeoutError if they do not in ``timeout`` s."""
        async with asyncio.timeout(timeout):
            while True:  # polled: the threads finishing them know nothing of this event loop
                if self.done() >= count:
                    return
                await asyncio.sleep(0.05)

    @contextmanager
    def running(self, *, count: int, workers: int) -> Iterator[asyncio.Future[list[None]]]:
        """Start ``count`` sign-ups on ``workers`` threads; yields the future of them all. Leaving the block
        waits for the threads, so no sign-up outlives the stack it talks to; leaving it on an error first
        drops the sign-ups not yet started."""
        pool = ThreadPoolExecutor(workers)
        try:
            yield asyncio.gather(*(asyncio.wrap_future(pool.submit(self.sign_up, n)) for n in range(count)))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
