"""Why work failed: a dependency that blinked (it will pass) or the work itself.

An event consumer must never park a valid event because Redis, the database, Kafka or a peer backend was
away for a while, and must not block its partition forever behind an event that can never be applied.
An RPC that fails because a dependency blinked answers UNAVAILABLE ("try again"), not INTERNAL
(:mod:`meshkit.rpc.interceptors.internal_errors`). :func:`classify` draws that line:

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

SQLAlchemy and aiokafka are looked up among the modules already imported, not imported here: a process
that never loaded them (the broker has no database, the gateway no Kafka client at first) cannot have
raised their errors, and need not pay for them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any, NamedTuple

import grpc
import redis.exceptions as redis_errors

__all__ = ["Failure", "Permanent", "Transient", "classify"]

_CHAIN_LIMIT = 8  # causes examined; chains are short, a cycle must not loop

_REDIS = (
    redis_errors.ConnectionError,  # includes BusyLoadingError (a restarting Redis loading its data)
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a replica being promoted
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
)
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
    if _database_blinked(exc):
        return "database"
    if _kafka_blinked(exc):
        return "kafka"
    if isinstance(exc, grpc.RpcError) and _status(exc) in _PEER_CODES:
        return "peer"
    if isinstance(exc, (OSError, TimeoutError)):
        return "network"
    return None


def _database_blinked(exc: BaseException) -> bool:
    errors: Any = sys.modules.get("sqlalchemy.exc")
    if errors is None:
        return False
    if isinstance(exc, (errors.OperationalError, errors.InterfaceError, errors.TimeoutError)):
        return True  # TimeoutError: no pooled connection came free in time
    return isinstance(exc, errors.DBAPIError) and bool(exc.connection_invalidated)


def _kafka_blinked(exc: BaseException) -> bool:
    errors: Any = sys.modules.get("aiokafka.errors")
    if errors is None:
        return False
    if isinstance(exc, (errors.KafkaConnectionError, errors.KafkaTimeoutError)):
        return True
    return isinstance(exc, errors.KafkaError) and bool(exc.retriable)


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
