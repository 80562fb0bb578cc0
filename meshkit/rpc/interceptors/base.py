"""The one place that knows how to wrap a grpc.aio handler: interceptors subclass
:class:`WrappingInterceptor` and only say what they do around a unary call or a server stream.

A wrapper is built per *method*, never per call: it is given the method's path, and reads anything of
the call (metadata, peer) from the call's context. :class:`InterceptorChain` relies on that: it wraps
each method's handler with every interceptor once, on the method's first call, and hands out the same
handler afterwards, so a call pays for no handler lookup, no interceptor hop and no handler rebuild.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from meshkit.rpc.context import Context

Unary = Callable[[Any, Context], Awaitable[Any]]
Stream = Callable[[Any, Context], AsyncIterator[Any]]
if TYPE_CHECKING:  # generic in grpc-stubs only
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable["Handler | None"]]


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


def call_code(context: Context, error: BaseException | None) -> grpc.StatusCode:
    """The status a call ended with: the one it set or aborted with, else what its end implies."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if error is None:
        return grpc.StatusCode.OK
    return grpc.StatusCode.CANCELLED if isinstance(error, asyncio.CancelledError) else grpc.StatusCode.UNKNOWN


class WrappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Rebuilds unary and server-streaming handlers around :meth:`wrap_unary` / :meth:`wrap_stream`.

    Usable alone as a grpc.aio interceptor (it then wraps on every call), or in an
    :class:`InterceptorChain`, which wraps once per method."""

    def applies(self, method: str) -> bool:
        return True

    def wrap_unary(self, behavior: Unary, method: str) -> Unary:
        return behavior

    def wrap_stream(self, behavior: Stream, method: str) -> Stream:
        return behavior

    def other(self, handler: Handler, method: str) -> Handler | None:
        """Client- and bidi-streaming handlers (Portico has none): passed through unless overridden."""
        return handler

    def wrap(self, handler: Handler, method: str) -> Handler | None:
        """``handler`` of ``method`` with this interceptor around it (None refuses the method)."""
        if not self.applies(method):
            return handler
        codecs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            wrapped: Any = self.wrap_unary(handler.unary_unary, method)  # type: ignore[arg-type]
            return grpc.unary_unary_rpc_method_handler(wrapped, **codecs)
        if handler.unary_stream is not None:
            streamed: Any = self.wrap_stream(_as_stream(handler.unary_stream), method)
            return grpc.unary_stream_rpc_method_handler(streamed, **codecs)
        return self.other(handler, method)

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        return None if handler is None else self.wrap(handler, details.method)


class InterceptorChain(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Several wrapping interceptors as one grpc.aio interceptor, in the order grpc would run them (the
    first outermost), with each method's wrapped handler built once and kept."""

    def __init__(self, interceptors: Sequence[WrappingInterceptor]) -> None:
        self._interceptors = tuple(reversed(interceptors))  # innermost first, as they wrap
        # By method path; only methods a servicer registered are kept (a caller names any path it likes).
        self._handlers: dict[str, Handler | None] = {}

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Any:
        method = details.method
        try:
            return self._handlers[method]
        except KeyError:
            pass
        handler = await continuation(details)
        if handler is None:
            return None  # not registered: UNIMPLEMENTED, and nothing kept
        wrapped: Handler | None = handler
        for interceptor in self._interceptors:
            if wrapped is None:  # an inner interceptor refused the method: UNIMPLEMENTED
                break
            wrapped = interceptor.wrap(wrapped, method)
        self._handlers[method] = wrapped
        return wrapped
