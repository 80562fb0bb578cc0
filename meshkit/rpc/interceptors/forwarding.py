"""Decides once per call whether its ``x-client-ip`` is believed (:mod:`meshkit.rpc.forwarding`), so
:func:`meshkit.rpc.context.client_ip` answers the forwarded address or the peer's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from meshkit.rpc.context import Context, forwarded_by_trusted
from meshkit.rpc.forwarding import ForwarderTrust
from meshkit.rpc.interceptors.base import Stream, Unary, WrappingInterceptor


class ForwardingInterceptor(WrappingInterceptor):
    def __init__(self, trust: ForwarderTrust) -> None:
        self._trust = trust

    def wrap_unary(self, behavior: Unary, method: str) -> Unary:
        async def unary(request: Any, context: Context) -> Any:
            reset = forwarded_by_trusted.set(self._trust.trusts(context))
            try:
                return await behavior(request, context)
            finally:
                forwarded_by_trusted.reset(reset)

        return unary

    def wrap_stream(self, behavior: Stream, method: str) -> Stream:
        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            reset = forwarded_by_trusted.set(self._trust.trusts(context))
            try:
                async for item in behavior(request, context):
                    yield item
            finally:
                forwarded_by_trusted.reset(reset)

        return stream
