"""Why an event handler failed: a dependency that blinked (retry until it is back) or the event itself.

An event consumer must never park a valid event because Redis, the database, Kafka or a peer backend was
away for a while, and must not block its partition forever behind an event that can never be applied.
:func:`classify` draws that line:

========================================================  ===========  ==========
error (the exception or any exception it was raised from)  transient   reason
========================================================  ===========  ==========
:class:`Permanent` raised by the handler                   no          declared
:class:`Transient` raised by the handler                   yes         declared
Redis connection errors, timeouts, loading, read-only      yes         redis
SQLAlchemy ``OperationalError``/``InterfaceError``,         yes         database
a pool timeout, a connection invalidated
a retriable Kafka error, a Kafka connection or timeout     yes         kafka
gRPC ``UNAVAILABLE``/``DEADLINE_EXCEEDED``/                yes         peer
``RESOURCE_EXHAUSTED`` from a peer
``OSError`` (connection refused, reset, …), ``TimeoutError``  yes       network
anything else (a bug, a constraint violation, bad data)    no          error
========================================================  ===========  ==========

The explicit types win: a handler that knows better raises :class:`Transient` or :class:`Permanent`
(``raise Permanent("no such tenant") from exc``). Otherwise the exception and its causes (``raise … from``
and the implicit context) are examined, so a dependency error wrapped by a library still counts as one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import grpc
import redis.exceptions as redis_errors
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from sqlalchemy import exc as sa_errors

__all__ = ["Failure", "Permanent", "Transient", "classify"]

_CHAIN_LIMIT = 8  # causes examined; chains are short, a cycle must not loop

_REDIS = (
    redis_errors.ConnectionError,  # includes BusyLoadingError (a restarting Redis loading its data)
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a replica being promoted
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
)
_DATABASE = (sa_errors.OperationalError, sa_errors.InterfaceError, sa_errors.TimeoutError)
_PEER_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)


class Transient(Exception):
    """Raised by a handler: this failure will pass, retry the event until it does."""


class Permanent(Exception):
    """Raised by a handler: this event can never be applied, dead-letter it (after a few attempts)."""


class Failure(NamedTuple):
    transient: bool
    reason: str  # a metric label: declared, redis, database, kafka, peer, network, error


def classify(error: BaseException) -> Failure:
    """Whether ``error`` (raised while applying an event) is worth retrying until it passes, and why."""
    chain = list(_causes(error))
    for exc in chain:  # an explicit verdict anywhere in the chain wins over a guess
        if isinstance(exc, Permanent):
            return Failure(False, "declared")
        if isinstance(exc, Transient):
            return Failure(True, "declared")
    for exc in chain:
        reason = _dependency(exc)
        if reason is not None:
            return Failure(True, reason)
    return Failure(False, "error")


def _dependency(exc: BaseException) -> str | None:
    """The dependency that blinked if ``exc`` is one of its transient errors, else None."""
    if isinstance(exc, _REDIS):
        return "redis"
    if isinstance(exc, _DATABASE) or (isinstance(exc, sa_errors.DBAPIError) and exc.connection_invalidated):
        return "database"
    if isinstance(exc, (KafkaConnectionError, KafkaTimeoutError)) or (
        isinstance(exc, KafkaError) and exc.retriable
    ):
        return "kafka"
    if isinstance(exc, grpc.RpcError) and _status(exc) in _PEER_CODES:
        return "peer"
    if isinstance(exc, (OSError, TimeoutError)):
        return "network"
    return None


def _status(exc: grpc.RpcError) -> grpc.StatusCode | None:
    """The status of a failed call (``grpc.aio.AioRpcError`` and the sync errors both have ``code()``)."""
    code = getattr(exc, "code", None)
    status = code() if callable(code) else None
    return status if isinstance(status, grpc.StatusCode) else None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it was raised from (or during), nearest first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < _CHAIN_LIMIT:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
