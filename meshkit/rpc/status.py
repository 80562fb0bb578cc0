"""Ending an RPC with a status the gateway can map: codes plus ``google.rpc`` details where they help."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from meshkit.rpc.context import Context

FieldViolation = tuple[str, str]  # (field, description)

# google.rpc.ErrorInfo domain and reasons the gateway turns into 413 / 415 instead of 429 / 400.
ERROR_DOMAIN = "portico"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
INVALID_REQUEST = "Invalid request"  # the message of INVALID_ARGUMENT when no better one is given


def _packed(*details: Any) -> list[any_pb2.Any]:
    packed = []
    for detail in details:
        wrapped = any_pb2.Any()
        wrapped.Pack(detail)
        packed.append(wrapped)
    return packed


def _bad_request(violations: Sequence[FieldViolation]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            for field, description in violations
        ]
    )


def detailed_status(
    code: grpc.StatusCode,
    message: str,
    *,
    reason: str | None = None,
    violations: Sequence[FieldViolation] = (),
) -> grpc.Status:
    """``code`` and ``message`` with an ``ErrorInfo`` naming ``reason`` (when given) and a ``BadRequest``
    with one field violation per problem (when there are any), packed into the status trailers."""
    details: list[Any] = []
    if reason is not None:
        details.append(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN))
    if violations:
        details.append(_bad_request(violations))
    code_number: int = code.value[0]
    return rpc_status.to_status(
        status_pb2.Status(code=code_number, message=message, details=_packed(*details))
    )


def payload_code(reason: str) -> grpc.StatusCode:
    """The status a payload ``reason`` travels with: RESOURCE_EXHAUSTED for ``PAYLOAD_TOO_LARGE``,
    INVALID_ARGUMENT for ``UNSUPPORTED_MEDIA_TYPE``; the ``ErrorInfo`` makes the gateway answer 413 / 415
    rather than 429 / 400."""
    return (
        grpc.StatusCode.RESOURCE_EXHAUSTED
        if reason == PAYLOAD_TOO_LARGE
        else grpc.StatusCode.INVALID_ARGUMENT
    )


def bad_request_status(violations: Sequence[FieldViolation], message: str = INVALID_REQUEST) -> grpc.Status:
    """INVALID_ARGUMENT with one ``BadRequest.FieldViolation`` per problem."""
    return detailed_status(grpc.StatusCode.INVALID_ARGUMENT, message, violations=violations)


def payload_status(reason: str, violation: FieldViolation, message: str) -> grpc.Status:
    """An upload that is too large or of a type that is not accepted (see :func:`payload_code`)."""
    return detailed_status(payload_code(reason), message, reason=reason, violations=[violation])


async def abort(
    context: Context,
    code: grpc.StatusCode,
    message: str,
    *,
    reason: str | None = None,
    violations: Sequence[FieldViolation] = (),
    trailers: Sequence[tuple[str, str | bytes]] = (),
) -> NoReturn:
    """End the call with ``code`` and ``message``: the one way a Portico servicer fails a call.

    ``reason`` adds a ``google.rpc.ErrorInfo``, ``violations`` a ``google.rpc.BadRequest`` (both in the
    ``grpc-status-details-bin`` trailer); ``trailers`` are sent as they are (a status passed on from
    another backend). Never returns, which the type checker knows.
    """
    if reason is not None or violations:
        status = detailed_status(code, message, reason=reason, violations=violations)
        await context.abort(status.code, status.details, (*status.trailing_metadata, *trailers))
    else:
        await context.abort(code, message, tuple(trailers))
    raise AssertionError("unreachable: ServicerContext.abort raises")


def violations_of(error: grpc.aio.AioRpcError | grpc.RpcError) -> list[FieldViolation]:
    """The field violations carried by an INVALID_ARGUMENT error (for clients and tests)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    found: list[FieldViolation] = []
    for detail in status.details if status else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found
