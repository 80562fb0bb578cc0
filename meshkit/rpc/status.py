"""Ending an RPC with a status the gateway can map: codes plus ``google.rpc`` details where they help."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

FieldViolation = tuple[str, str]  # (field, description)

# google.rpc.ErrorInfo domain and reasons the gateway turns into 413 / 415 instead of 429 / 400.
ERROR_DOMAIN = "portico"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"


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


def bad_request_status(violations: Sequence[FieldViolation], message: str = "Invalid request") -> grpc.Status:
    return rpc_status.to_status(
        status_pb2.Status(
            code=code_pb2.INVALID_ARGUMENT, message=message, details=_packed(_bad_request(violations))
        )
    )


def payload_status(reason: str, violation: FieldViolation, message: str) -> grpc.Status:
    """RESOURCE_EXHAUSTED (``PAYLOAD_TOO_LARGE``) or INVALID_ARGUMENT (``UNSUPPORTED_MEDIA_TYPE``) with
    an ``ErrorInfo`` naming the reason, so the gateway answers 413 / 415 rather than 429 / 400."""
    code = code_pb2.RESOURCE_EXHAUSTED if reason == PAYLOAD_TOO_LARGE else code_pb2.INVALID_ARGUMENT
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)
    return rpc_status.to_status(
        status_pb2.Status(code=code, message=message, details=_packed(info, _bad_request([violation])))
    )


async def abort_payload(
    context: grpc.aio.ServicerContext[Any, Any], reason: str, violation: FieldViolation, message: str
) -> NoReturn:
    """End the call for an upload that is too large or of a type that is not accepted."""
    status = payload_status(reason, violation, message)
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("unreachable: abort raises")  # for type checkers


async def abort_invalid(
    context: grpc.aio.ServicerContext[Any, Any],
    violations: Sequence[FieldViolation],
    message: str = "Invalid request",
) -> NoReturn:
    """INVALID_ARGUMENT with one ``BadRequest.FieldViolation`` per problem."""
    status = bad_request_status(violations, message)
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("unreachable: abort raises")  # for type checkers


def violations_of(error: grpc.aio.AioRpcError | grpc.RpcError) -> list[FieldViolation]:
    """The field violations carried by an INVALID_ARGUMENT error (for clients and tests)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    found: list[FieldViolation] = []
    for detail in status.details if status else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found
