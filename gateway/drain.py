"""Draining the gateway's keep-alive connections on SIGTERM without cutting off a request already sent.

uvicorn's shutdown closes every idle keep-alive connection at once. A request a client sent on such a
connection just before the signal, still unread in the socket, then meets a closed connection. So for a
short lead after the signal the gateway keeps reading and answering, and every answer carries
``Connection: close``: each client is told to go, one answer at a time, before the idle close.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Draining:
    """An ASGI wrapper: once :meth:`start` is called, every HTTP answer closes its connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.started = asyncio.Event()

    def start(self) -> None:
        self.started.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if self.started.is_set() and message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)
