"""Mapping failed backend calls and unbuildable requests to the contract's error responses.

Which HTTP status, code and default message a gRPC status gets is in ``gateway.status_table``. A client
sees the backend's message only for 4xx statuses, which backends write for clients; a 5xx message is
generic, because the backend's text may name hosts, SQL or stack frames. Per-field ``details`` come from
a ``google.rpc.BadRequest`` in the ``grpc-status-details-bin`` trailer, also only for 4xx.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from gateway.status_table import BY_REASON, BY_STATUS, FROM_GRPC
from gateway.transcode.violations import TranscodeError
from meshkit.rpc.status import ERROR_DOMAIN

DETAILS_TRAILER = "grpc-status-details-bin"

Metadata = Iterable[tuple[str, str | bytes]]


@dataclass(frozen=True)
class ErrorReply:
    """An error response: what `gateway.errors.error_response` needs to write the envelope."""

    status: int
    code: str
    message: str
    details: list[dict[str, str]] | None = None  # per-field problems, for 400s


def from_rpc_error(error: grpc.RpcError) -> ErrorReply:
    """The reply for a failed call (``grpc.aio.AioRpcError`` or a sync ``grpc.RpcError`` call)."""
    # At run time trailing metadata is (key, value) pairs (grpc.aio.Metadata or a tuple of tuples);
    # the stubs describe the sync form as objects with attributes, which it is not.
    trailers: Metadata = error.trailing_metadata() or ()  # type: ignore[assignment]
    return from_status(error.code(), error.details(), trailers)


def from_status(code: grpc.StatusCode, details: str | None, trailing_metadata: Metadata = ()) -> ErrorReply:
    """The reply for a status code, its message and the call's trailing metadata."""
    mapping = FROM_GRPC[code]
    status = mapping.status
    if status >= 500:
        return ErrorReply(status, BY_STATUS[status].code, BY_STATUS[status].message)
    rich = rich_details(trailing_metadata)
    if rich is None and not mapping.backend_text:
        details = None  # no rich status: perhaps the library's own text, which names internal limits
    violations = rich.violations if rich else []
    if rich and mapping.refined_by_reason:
        status = BY_REASON.get(rich.reasons.get(ERROR_DOMAIN, ""), status)
    error = BY_STATUS[status]
    return ErrorReply(
        status,
        error.code,
        details or error.message,
        [{"field": f, "description": d} for f, d in violations] or None,
    )


def from_transcode_error(error: TranscodeError) -> ErrorReply:
    """The 400 for a request that could not become a request message."""
    details = [{"field": f, "description": d} for f, d in error.violations]
    return ErrorReply(400, BY_STATUS[400].code, error.message, details or None)


@dataclass(frozen=True)
class RichDetails:
    violations: list[tuple[str, str]]  # (field, description) of every BadRequest
    reasons: dict[str, str]  # ErrorInfo domain → reason


def rich_details(trailing_metadata: Metadata) -> RichDetails | None:
    """What the backend's rich status trailer says, or None when there is none.

    A trailer that does not decode is treated as absent rather than failing the reply: the status code
    alone still makes a correct error.
    """
    for key, value in trailing_metadata:
        if key != DETAILS_TRAILER or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except DecodeError:
            continue
        found = RichDetails([], {})
        for detail in status.details:
            bad, info = error_details_pb2.BadRequest(), error_details_pb2.ErrorInfo()
            if detail.Is(bad.DESCRIPTOR) and detail.Unpack(bad):
                found.violations.extend((v.field, v.description) for v in bad.field_violations)
            elif detail.Is(info.DESCRIPTOR) and detail.Unpack(info):
                found.reasons[info.domain] = info.reason
        return found
    return None
