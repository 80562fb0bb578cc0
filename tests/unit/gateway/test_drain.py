"""The gateway's drain lead: after SIGTERM a request sent on an open keep-alive connection is still read and
answered, and the answer closes the connection (uvicorn alone closes idle connections at once, so such a
request met a closed connection)."""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway.drain import Draining
from gateway.serve import GatewayServer
from infra.procs import free_port
from meshkit.shutdown import ShutdownDeadline

REQUEST = b"GET /ping HTTP/1.1\r\nHost: portico\r\n\r\n"


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-length"))
    return head, await reader.readexactly(length)


async def test_a_request_sent_after_sigterm_on_an_open_connection_is_answered_and_closes_it() -> None:
    app = Starlette(routes=[Route("/ping", lambda request: PlainTextResponse("pong"))])
    draining = Draining(app)
    port = free_port()
    exits: list[int] = []
    server = GatewayServer(
        uvicorn.Config(draining, port=port, log_config=None, lifespan="off", timeout_graceful_shutdown=2),
        ShutdownDeadline(8, exit=exits.append),
        draining,
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)
        head, body = await _answer(reader)
        assert body == b"pong"
        assert b"connection: close" not in head.lower()  # kept alive before the signal

        server.should_exit = True  # what SIGTERM does (handle_exit would re-raise it in pytest at the end)
        # The shutdown has begun: uvicorn alone would close the idle connection now.
        await asyncio.wait_for(draining.started.wait(), 10)
        writer.write(REQUEST)
        head, body = await _answer(reader)
        assert body == b"pong"
        assert b"connection: close" in head.lower()
        assert await reader.read() == b""  # and the gateway closed the connection after it
        writer.close()
        await asyncio.wait_for(serving, 10)
    finally:
        server.deadline.finish()
        if not serving.done():
            server.force_exit = True
            await serving
    assert exits == []
