"""``python -m gateway``'s server: the first SIGTERM arms the shutdown deadline and starts uvicorn's
graceful shutdown, whose grace is ``PORTICO_SHUTDOWN_GRACE``."""

from __future__ import annotations

import signal

import uvicorn
from starlette.applications import Starlette

from gateway.serve import GatewayServer
from meshkit.shutdown import ShutdownDeadline


def test_sigterm_arms_the_deadline_and_asks_uvicorn_to_exit() -> None:
    exits: list[int] = []
    deadline = ShutdownDeadline(30, exit=exits.append)
    server = GatewayServer(uvicorn.Config(Starlette(), timeout_graceful_shutdown=30), deadline)
    assert deadline.remaining() == deadline.limit  # not armed yet

    server.handle_exit(signal.SIGTERM, None)

    assert server.should_exit
    assert deadline.remaining() < deadline.limit
    assert "uvicorn shutdown" in deadline.pending
    deadline.finish()
    assert exits == []
