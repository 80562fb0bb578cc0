"""The gateway's one error table: how each gRPC status becomes an HTTP error, and what each HTTP error
says (its contract ``code``, default message and OpenAPI description).

Transcoding (a failed backend call), dispatch and the exception handlers (the envelope) and the OpenAPI
document all read this module, so a status cannot be added to one of them and forgotten in another.

The gRPC → HTTP mapping is the contract's: grpc-gateway's, except UNIMPLEMENTED and CANCELLED, which the
contract leaves at 500. An ``ErrorInfo`` of the ``portico`` domain whose reason names a 413 / 415 row
makes an INVALID_ARGUMENT or RESOURCE_EXHAUSTED call that status instead (an image upload); the reason
strings are the backends' own, from ``meshkit.rpc.status``.

No web-framework imports, so every gateway module can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from meshkit.rpc.status import PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE


@dataclass(frozen=True)
class HttpError:
    """One HTTP error status the gateway answers with."""

    status: int
    code: str  # the contract's error code, in the envelope
    message: str  # the default message: every 5xx's, and a 4xx's whose backend sent none
    description: str  # what the OpenAPI document says of it
    response: str | None = None  # its OpenAPI components/responses name; None: no route documents it
    reason: str | None = None  # the ErrorInfo reason (domain ``portico``) that selects this status


@dataclass(frozen=True)
class GrpcError:
    """How a failed call's gRPC status becomes an HTTP error."""

    status: int  # the HTTP status
    refined_by_reason: bool = False  # an ErrorInfo reason may pick a more precise status (413 / 415)
    # False when the gRPC library raises the code itself (a message or metadata over its limit): its
    # text may name internal limits, so it is shown only when the backend sent a rich status.
    backend_text: bool = True


HTTP_ERRORS: tuple[HttpError, ...] = (
    HttpError(
        400,
        "BAD_REQUEST",
        "Invalid request",
        "Invalid request: bad parameter, body or field (see `details`).",
        "BadRequest",
    ),
    HttpError(401, "UNAUTHORIZED", "Unauthorized", "No valid access token.", "Unauthorized"),
    HttpError(403, "FORBIDDEN", "Forbidden", "The token's tenant or roles do not allow this.", "Forbidden"),
    HttpError(404, "NOT_FOUND", "Not found", "No such resource (also another tenant's).", "NotFound"),
    HttpError(405, "METHOD_NOT_ALLOWED", "Method not allowed", "The path exists; the method does not."),
    HttpError(
        406,
        "NOT_ACCEPTABLE",
        "Not acceptable",
        "No media type the client accepts is offered (a stream: SSE or NDJSON).",
        "NotAcceptable",
    ),
    HttpError(
        409, "CONFLICT", "Conflict", "Conflicts with the current state (e.g. a duplicate).", "Conflict"
    ),
    HttpError(
        413,
        "PAYLOAD_TOO_LARGE",
        "Payload too large",
        "The body or an uploaded part is larger than allowed.",
        "PayloadTooLarge",
        reason=PAYLOAD_TOO_LARGE,
    ),
    HttpError(
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "Unsupported media type",
        "The body is not JSON (or an uploaded file not of an accepted type).",
        "UnsupportedMediaType",
        reason=UNSUPPORTED_MEDIA_TYPE,
    ),
    HttpError(
        429,
        "RATE_LIMIT_EXCEEDED",
        "Rate limit exceeded",
        "A rate limit refused the request; see `Retry-After`.",
        "TooManyRequests",
    ),
    HttpError(
        500,
        "INTERNAL_ERROR",
        "Internal server error",
        "An unexpected error; no internal detail is given.",
        "InternalError",
    ),
    HttpError(
        501,
        "NOT_IMPLEMENTED",
        "Not implemented",
        "The backend does not implement this call (yet).",
        "NotImplemented",
    ),
    HttpError(
        503,
        "UNAVAILABLE",
        "Service unavailable",
        "A backend, the rate limiter or the token-signing keys are unavailable; may carry `Retry-After`.",
        "Unavailable",
    ),
    HttpError(
        504,
        "TIMEOUT",
        "Upstream timed out",
        "The backend did not answer within the route's deadline.",
        "Timeout",
    ),
)

_C = grpc.StatusCode
# Every gRPC status, so none falls through to a default by accident.
FROM_GRPC: dict[grpc.StatusCode, GrpcError] = {
    _C.OK: GrpcError(500),  # a failed call that says OK is the gateway's own bug
    _C.CANCELLED: GrpcError(500),
    _C.UNKNOWN: GrpcError(500),
    _C.INVALID_ARGUMENT: GrpcError(400, refined_by_reason=True),
    _C.DEADLINE_EXCEEDED: GrpcError(504),
    _C.NOT_FOUND: GrpcError(404),
    _C.ALREADY_EXISTS: GrpcError(409),
    _C.PERMISSION_DENIED: GrpcError(403),
    _C.RESOURCE_EXHAUSTED: GrpcError(429, refined_by_reason=True, backend_text=False),
    _C.FAILED_PRECONDITION: GrpcError(400),
    _C.ABORTED: GrpcError(409),
    _C.OUT_OF_RANGE: GrpcError(400),
    _C.UNIMPLEMENTED: GrpcError(500),
    _C.INTERNAL: GrpcError(500),
    _C.UNAVAILABLE: GrpcError(503),
    _C.DATA_LOSS: GrpcError(500),
    _C.UNAUTHENTICATED: GrpcError(401),
}

BY_STATUS: dict[int, HttpError] = {error.status: error for error in HTTP_ERRORS}
# ErrorInfo reason → the HTTP status it selects.
BY_REASON: dict[str, int] = {error.reason: error.status for error in HTTP_ERRORS if error.reason}
# The contract's error codes, for the envelope's schema.
ERROR_CODES: tuple[str, ...] = tuple(sorted({error.code for error in HTTP_ERRORS}))

# What a path no route matches, or a method the path does not have, is told.
ROUTE_NOT_FOUND = "Route not found"
METHOD_NOT_ALLOWED = BY_STATUS[405].message
ROUTING_MESSAGES: dict[int, str] = {404: ROUTE_NOT_FOUND, 405: METHOD_NOT_ALLOWED}


def code_for(status: int) -> str:
    """The envelope's ``code`` for any status, also one the table does not list."""
    known = BY_STATUS.get(status)
    if known is not None:
        return known.code
    return BY_STATUS[500 if status >= 500 else 400].code
