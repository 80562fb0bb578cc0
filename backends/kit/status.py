"""Ending an RPC with a status the gateway can map: codes plus ``google.rpc`` details where they help."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

FieldViolation = tuple[str, str]  # (field, description)


def bad_request_status(violations: Sequence[FieldViolation], message: str = "Invalid request") -> grpc.Status:
    detail = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            for field, description in violations
        ]
    )
    packed = any_pb2.Any()
    packed.Pack(detail)
    return rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message, details=[packed])
    )


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
