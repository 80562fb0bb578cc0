"""Send a batch of records in order without waiting between them, then collect the acknowledgements.

Pipelining keeps per-key order because the producer is idempotent: it keeps the send order per partition
even when it retries. What counts as delivered is the longest prefix of acknowledged records, so a row is
never marked while an earlier one (perhaps of the same key) still has to be retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["Delivery", "deliver"]

R = TypeVar("R")
Send = Callable[[R], Awaitable["asyncio.Future[Any]"]]


@dataclass
class Delivery(Generic[R]):
    """Outcome of :func:`deliver`: ``acked`` + ``failed`` are the records, in their order."""

    acked: list[R]
    failed: list[R]
    error: str | None = None
    # Sends still unanswered at the deadline: the producer keeps retrying them in the background.
    unresolved: list[asyncio.Future[Any]] = field(default_factory=list)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a late failure as seen, so asyncio does not log 'exception was never retrieved'."""
    if not future.cancelled():
        future.exception()


async def deliver(records: Sequence[R], send: Send[R], *, timeout: float) -> Delivery[R]:
    """Send every record (stopping at the first refused send), then await the acks until ``timeout``."""
    futures: list[asyncio.Future[Any]] = []
    error: str | None = None
    try:
        async with asyncio.timeout(timeout):
            try:
                for record in records:
                    futures.append(await send(record))
            except Exception as exc:  # a refused send (not connected, record too large): stop there
                error = _describe(exc)
            if futures:
                await asyncio.wait(futures)  # never cancels them: a late ack still reaches the broker
    except TimeoutError:
        error = error or f"not acknowledged within {timeout:g}s"

    acked: list[R] = []
    for record, future in zip(records, futures, strict=False):
        if not future.done() or future.cancelled():
            break
        if (failure := future.exception()) is not None:
            error = error or _describe(failure)
            break
        acked.append(record)
    if error is None and len(acked) < len(records):
        error = "not acknowledged"  # defensive: every future done and fine means all were acked
    unresolved = [f for f in futures if not f.done()]
    for future in unresolved:
        future.add_done_callback(_retrieve)
    for future in futures[len(acked) :]:
        if future.done():
            _retrieve(future)
    return Delivery(acked, list(records[len(acked) :]), error, unresolved)
