"""Which handler failures are a dependency that blinked (retried until it is back) and which are the
event's own (dead-lettered after a few attempts)."""

from __future__ import annotations

import grpc
import pytest
import redis.exceptions
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, NodeNotReadyError
from grpc.aio import AioRpcError, Metadata
from sqlalchemy import exc as sa_errors

from meshkit.failures import Failure, Permanent, Transient, classify


def rpc_error(code: grpc.StatusCode) -> AioRpcError:
    return AioRpcError(code, Metadata(), Metadata(), details="peer says no")


def wrapped(error: Exception) -> Exception:
    """``error`` as a library re-raises it: ``raise RuntimeError(...) from error``."""
    try:
        raise RuntimeError("could not end the sessions") from error
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (redis.exceptions.ConnectionError("Connection refused"), Failure(True, "redis")),
        (redis.exceptions.TimeoutError("Timeout reading from socket"), Failure(True, "redis")),
        (redis.exceptions.BusyLoadingError("loading the dataset"), Failure(True, "redis")),
        (redis.exceptions.ResponseError("WRONGTYPE"), Failure(False, "error")),
        (
            sa_errors.OperationalError("SELECT 1", {}, Exception("database is locked")),
            Failure(True, "database"),
        ),
        (
            sa_errors.InterfaceError("SELECT 1", {}, Exception("connection is closed")),
            Failure(True, "database"),
        ),
        (
            sa_errors.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")),
            Failure(False, "error"),
        ),
        (KafkaConnectionError(), Failure(True, "kafka")),
        (NodeNotReadyError(), Failure(True, "kafka")),
        (MessageSizeTooLargeError(), Failure(False, "error")),
        (rpc_error(grpc.StatusCode.UNAVAILABLE), Failure(True, "peer")),
        (rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED), Failure(True, "peer")),
        (rpc_error(grpc.StatusCode.INVALID_ARGUMENT), Failure(False, "error")),
        (ConnectionRefusedError(111, "Connection refused"), Failure(True, "network")),
        (TimeoutError(), Failure(True, "network")),
        (ValueError("bad payload"), Failure(False, "error")),
        (KeyError("tenant"), Failure(False, "error")),
        (Transient("warming up"), Failure(True, "declared")),
        (Permanent("no such tenant"), Failure(False, "declared")),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_classify(error: Exception, expected: Failure) -> None:
    assert classify(error) == expected


def test_a_dependency_error_wrapped_by_a_library_is_still_transient() -> None:
    assert classify(wrapped(redis.exceptions.ConnectionError("gone"))) == Failure(True, "redis")


def test_an_explicit_verdict_wins_over_the_error_it_was_raised_from() -> None:
    declared = Permanent("the peer says this user never existed")
    declared.__cause__ = rpc_error(grpc.StatusCode.UNAVAILABLE)
    assert classify(declared) == Failure(False, "declared")


def test_a_cycle_in_the_cause_chain_ends() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__cause__, second.__cause__ = second, first
    assert classify(first) == Failure(False, "error")
