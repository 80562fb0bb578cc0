"""Retries of idempotent reads: on UNAVAILABLE only, with full-jitter exponential backoff, every attempt
inside the route's one overall deadline.

DEADLINE_EXCEEDED is not retried: the attempt used the budget the next one would need, and a slow
backend is not helped by more load. Whether a route may retry at all is the caller's decision
(``retryable`` policy and a GET/HEAD request); this module never sees a write.

Why not gRPC's own ``retryPolicy`` in the channel's service config: it is keyed by gRPC method, and one
RPC may be bound to a GET (an idempotent read, retried) and a POST (not retried); it would also hide the
retries from ``portico_gateway_upstream_retries_total``. What gRPC does retry by itself (transparent
retries) are the calls that never reached a server, such as one racing a replica's GOAWAY when its
connection ages out: those are safe for writes too.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

T = TypeVar("T")

# A retry is not started when less than this remains of the deadline: it could only time out.
_MIN_ATTEMPT_S = 0.05


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int  # total, including the first (1: no retry)
    base_delay: float  # seconds; attempt n waits up to base_delay * 2**(n-1)
    max_delay: float = 1.0

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Full jitter (uniform in [0, cap]): clients that failed together do not retry together."""
        cap = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return (rng or random).uniform(0, cap)


def retryable(error: grpc.aio.AioRpcError) -> bool:
    return error.code() == grpc.StatusCode.UNAVAILABLE


async def with_retries(
    attempt: Callable[[float], Awaitable[T]],
    *,
    deadline: float,
    policy: RetryPolicy,
    on_retry: Callable[[], None] = lambda: None,
) -> T:
    """``attempt(timeout)`` until it succeeds, fails for good, or the deadline (seconds) is spent."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    timeout = deadline  # the next attempt's share: what is left of the deadline when it starts
    retry = 0
    while True:
        try:
            return await attempt(max(timeout, 0.001))
        except grpc.aio.AioRpcError as exc:
            retry += 1
            if not retryable(exc) or retry >= policy.attempts:
                raise
            pause = policy.delay(retry)
            if end - loop.time() - pause < _MIN_ATTEMPT_S:
                raise
            await asyncio.sleep(pause)
            timeout = end - loop.time()
            if timeout < _MIN_ATTEMPT_S:  # the pause overran on a busy loop: no attempt that could only
                raise  # time out
            on_retry()
