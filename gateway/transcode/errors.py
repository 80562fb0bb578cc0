"""Mapping failed backend calls and unbuildable requests to the contract's error responses.

The status table is the contract's (grpc-gateway's, except UNIMPLEMENTED and CANCELLED, which the
contract leaves at 500). A client sees the backend's message only for 4xx statuses, which backends
write for clients; a 5xx message is generic, because the backend's text may name hosts, SQL or
stack frames. Per-field ``details`` come from a ``google.rpc.BadRequest`` in the
``grpc-status-details-bin`` trailer, also only for 4xx.

RESOURCE_EXHAUSTED is also what the gRPC library itself raises (a message or metadata over its limit),
so its text is only shown when the backend sent a rich status; an ``ErrorInfo`` of the ``portico`` domain
with reason ``PAYLOAD_TOO_LARGE`` / ``UNSUPPORTED_MEDIA_TYPE`` makes it a 413 / 415 (an image upload).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from gateway.codes import CODES
from gateway.transcode.violations import TranscodeError

DETAILS_TRAILER = "grpc-status-details-bin"

_C = grpc.StatusCode
# gRPC status → HTTP status, per the contract; anything not listed is 500.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    _C.INVALID_ARGUMENT: 400,
    _C.OUT_OF_RANGE: 400,
    _C.FAILED_PRECONDITION: 400,
    _C.UNAUTHENTICATED: 401,
    _C.PERMISSION_DENIED: 403,
    _C.NOT_FOUND: 404,
    _C.ALREADY_EXISTS: 409,
    _C.ABORTED: 409,
    _C.RESOURCE_EXHAUSTED: 429,
    _C.UNAVAILABLE: 503,
    _C.DEADLINE_EXCEEDED: 504,
}

# ErrorInfo reasons (domain "portico", see meshkit/rpc/status.py) that pick a more precise status.
ERROR_DOMAIN = "portico"
PAYLOAD_REASONS = {"PAYLOAD_TOO_LARGE": 413, "UNSUPPORTED_MEDIA_TYPE": 415}
PAYLOAD_CODES = (_C.RESOURCE_EXHAUSTED, _C.INVALID_ARGUMENT)

# HTTP status → the contract's error code: one table for the whole gateway.
ERROR_CODES = CODES

# Used for every 5xx, and for a 4xx whose backend sent no message.
DEFAULT_MESSAGES: dict[int, str] = {
    400: "Invalid request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    429: "Rate limit exceeded",
    500: "Internal server error",
    503: "Service unavailable",
    504: "Upstream timed out",
}

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
    status = HTTP_STATUS.get(code, 500)
    if status >= 500:
        return ErrorReply(status, ERROR_CODES[status], DEFAULT_MESSAGES[status])
    rich = rich_details(trailing_metadata)
    if rich is None and code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        details = None  # no rich status: perhaps the library's own text, which names internal limits
    violations = rich.violations if rich else []
    if rich and code in PAYLOAD_CODES:
        status = PAYLOAD_REASONS.get(rich.reasons.get(ERROR_DOMAIN, ""), status)
    return ErrorReply(
        status,
        ERROR_CODES[status],
        details or DEFAULT_MESSAGES[status],
        [{"field": f, "description": d} for f, d in violations] or None,
    )


def from_transcode_error(error: TranscodeError) -> ErrorReply:
    """The 400 for a request that could not become a request message."""
    details = [{"field": f, "description": d} for f, d in error.violations]
    return ErrorReply(400, ERROR_CODES[400], error.message, details or None)


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
