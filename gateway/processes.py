"""The gateway as several processes (:mod:`meshkit.supervisor`): each child's sockets, and its own port.

All children share the HTTP port (``SO_REUSEPORT``), so a scrape of ``/metrics`` there reaches one of
them at random. Each child therefore also listens on a port of its own (``metrics_port + index``) that
answers only the operations paths: Prometheus scrapes every child there, and a probe can ask each one
whether it is ready. Nothing else is served on it, so it is no second way into the API.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from gateway.config import GatewaySettings
from meshkit.supervisor import listen_socket, own_port

if TYPE_CHECKING:  # the supervisor imports this module for its ports: no Starlette there
    from starlette.types import ASGIApp, Receive, Scope, Send

OPERATIONS_PATHS = frozenset({"/metrics", "/health", "/ready"})


def metrics_base(settings: GatewaySettings) -> int:
    """The first child's own port."""
    return settings.metrics_port if settings.metrics_port is not None else settings.port + 1


def supervised_ports(settings: GatewaySettings) -> list[int]:
    """Every port the children will bind: checked free by the supervisor first."""
    base = metrics_base(settings)
    return [settings.port, *(base + index for index in range(settings.processes))]


def child_sockets(settings: GatewaySettings) -> tuple[list[socket.socket], int]:
    """This child's sockets (the shared port, its own port) and its own port's number."""
    own = own_port(metrics_base(settings))
    shared = listen_socket(settings.host, settings.port, reuse_port=True)
    return [shared, listen_socket(settings.host, own, reuse_port=False)], own


class OperationsOnly:
    """An ASGI wrapper: on ``port`` only the operations paths are answered, anything else is a 404."""

    def __init__(self, app: ASGIApp, port: int) -> None:
        self.app = app
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        if (
            scope["type"] in ("http", "websocket")
            and server is not None
            and server[1] == self.port
            and scope["path"] not in OPERATIONS_PATHS
        ):
            from starlette.responses import PlainTextResponse

            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)
