"""Unexpected exceptions become a plain INTERNAL "Internal error" for the caller, and a logged traceback
for us. gRPC's default would send ``Unexpected <class 'X'>: <message>``, leaking internals to clients.

A dependency that blinked (the database busy or down, Redis, Kafka, a peer: :func:`meshkit.failures.classify`)
is no bug: the caller gets UNAVAILABLE, which says "try again" (503 at the gateway, which retries reads),
and the log a warning naming the dependency."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import grpc

from meshkit.failures import classify
from meshkit.rpc.context import Context, metadata_value
from meshkit.rpc.interceptors.base import Stream, Unary, WrappingInterceptor
from meshkit.rpc.status import abort

log = logging.getLogger(__name__)
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable; try again"


async def _hide(exc: Exception, context: Context, method: str) -> NoReturn:
    if isinstance(exc, grpc.aio.AbortError):
        raise exc  # a status the handler chose with abort() stands
    code = context.code()
    if isinstance(code, grpc.StatusCode) and code != grpc.StatusCode.OK:
        # set_code() then raise (what generated base classes do): end with that status and its details
        # rather than gRPC's "Unexpected <class ...>" text.
        await abort(context, code, context.details() or "")
    failure = classify(exc)
    if failure.transient:
        # The type only: a database error's text carries the statement and its parameters.
        log.warning(
            "a dependency failed during an RPC",
            extra={
                "method": method,
                "dependency": failure.reason,
                "error": type(exc).__name__,
                "request_id": metadata_value(context, "x-request-id")[:128],
            },
        )
        await abort(context, grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_MESSAGE)
    log.exception(
        "unhandled error in an RPC",
        extra={"method": method, "request_id": metadata_value(context, "x-request-id")[:128]},
    )
    await abort(context, grpc.StatusCode.INTERNAL, "Internal error")


class ErrorInterceptor(WrappingInterceptor):
    def wrap_unary(self, behavior: Unary, method: str) -> Unary:
        async def unary(request: Any, context: Context) -> Any:
            try:
                return await behavior(request, context)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await _hide(exc, context, method)

        return unary

    def wrap_stream(self, behavior: Stream, method: str) -> Stream:
        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            try:
                async for item in behavior(request, context):
                    yield item
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await _hide(exc, context, method)

        return stream
