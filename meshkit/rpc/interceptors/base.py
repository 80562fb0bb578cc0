"""The one place that knows how to wrap a grpc.aio handler: interceptors subclass
:class:`WrappingInterceptor` and only say what they do around a unary call or a server stream."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from meshkit.rpc.context import Context

Unary = Callable[[Any, Context], Awaitable[Any]]
Stream = Callable[[Any, Context], AsyncIterator[Any]]


def _as_stream(behavior: Any) -> Stream:
    """Server-stream handlers are async generators or coroutines that call ``context.write``."""

    async def items(request: Any, context: Context) -> AsyncIterator[Any]:
        result = behavior(request, context)
        if inspect.isasyncgen(result):
            async for item in result:
                yield item
        else:
            await result

    return items


class WrappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Rebuilds unary and server-streaming handlers around :meth:`wrap_unary` / :meth:`wrap_stream`."""

    def applies(self, details: grpc.HandlerCallDetails) -> bool:
        return True

    def wrap_unary(self, behavior: Unary, details: grpc.HandlerCallDetails) -> Unary:
        return behavior

    def wrap_stream(self, behavior: Stream, details: grpc.HandlerCallDetails) -> Stream:
        return behavior

    def other(
        self, handler: grpc.RpcMethodHandler[Any, Any], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Client- and bidi-streaming handlers (Portico has none): passed through unless overridden."""
        return handler

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(details)
        if handler is None or not self.applies(details):
            return handler
        codecs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            wrapped: Any = self.wrap_unary(handler.unary_unary, details)  # type: ignore[arg-type]
            return grpc.unary_unary_rpc_method_handler(wrapped, **codecs)
        if handler.unary_stream is not None:
            streamed: Any = self.wrap_stream(_as_stream(handler.unary_stream), details)
            return grpc.unary_stream_rpc_method_handler(streamed, **codecs)
        return self.other(handler, details)  # type: ignore[return-value]
