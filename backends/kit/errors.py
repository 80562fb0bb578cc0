"""Unexpected exceptions become a plain INTERNAL "Internal error" for the caller, and a logged traceback
for us. gRPC's default would send ``Unexpected <class 'X'>: <message>``, leaking internals to clients."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]


def _request_id(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str):
            return value[:128]
    return ""


async def _hide(exc: Exception, context: Context, method: str) -> None:
    if isinstance(exc, grpc.aio.AbortError):
        raise exc  # a status the handler chose with abort() stands
    code = context.code()
    if isinstance(code, grpc.StatusCode) and code != grpc.StatusCode.OK:
        # set_code() then raise (what generated base classes do): end with that status and its details
        # rather than gRPC's "Unexpected <class ...>" text.
        await context.abort(code, context.details() or "")
    log.exception("unhandled error in an RPC", extra={"method": method, "request_id": _request_id(context)})
    await context.abort(grpc.StatusCode.INTERNAL, "Internal error")


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        if handler.unary_unary is not None:
            inner: Any = handler.unary_unary

            async def unary(request: Any, context: Context) -> Any:
                try:
                    return await inner(request, context)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    await _hide(exc, context, method)

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            inner_stream: Any = handler.unary_stream

            async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
                try:
                    async for item in inner_stream(request, context):
                        yield item
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    await _hide(exc, context, method)

            return grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
