"""The request-head deadline, on a real uvicorn server (loopback, free port) with a tiny ASGI app: a
head that drips in is answered 408 and closed after the deadline, on a new connection and on a
keep-alive one; a prompt request, and a slow body after a prompt head, are served."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from gateway.header_timeout import protocol_with_header_timeout
from infra.procs import free_port

DEADLINE = 0.5


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the whole body, however slowly it comes
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=protocol_with_header_timeout(DEADLINE),
        log_config=None,
        lifespan="off",
        timeout_keep_alive=30,  # longer than the deadline: the deadline is what closes
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.started
    yield port
    running.should_exit = True
    thread.join(10)


def _read_all(sock: socket.socket, limit: float = 5.0) -> bytes:
    """Everything until the server closes the connection (or ``limit`` seconds pass)."""
    sock.settimeout(limit)
    chunks = []
    try:
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    except TimeoutError:
        chunks.append(b"<still open>")
    return b"".join(chunks)


def _read_answer(sock: socket.socket) -> bytes:
    """One whole 200 answer of the app (its body is "ok")."""
    sock.settimeout(5)
    answer = b""
    while not answer.endswith(b"\r\n\r\nok"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return answer


def test_a_dripping_head_gets_408_and_the_connection_closed(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
        answer = _read_all(sock)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert not answer.endswith(b"<still open>")
    assert DEADLINE * 0.9 <= waited < DEADLINE + 3


def test_a_silent_connection_is_closed(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_prompt_requests_on_a_keep_alive_connection_are_served_then_a_slow_one_closed(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        for _ in range(3):  # each head is whole at once; time spent between them is not counted
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_answer(sock).startswith(b"HTTP/1.1 200 ")
            time.sleep(DEADLINE * 0.6)
        sock.sendall(b"GET / HTTP/1.1\r\n")  # then a head that never ends
        assert _read_all(sock).startswith(b"HTTP/1.1 408 ")


def test_a_head_begun_late_gets_its_whole_deadline(server: int) -> None:
    # The deadline armed when the connection opened falls in the middle of the second head, which
    # began later and still has time: it is served.
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_answer(sock).startswith(b"HTTP/1.1 200 ")
        time.sleep(DEADLINE * 0.6)
        sock.sendall(b"GET / HTTP/1.1\r\n")
        time.sleep(DEADLINE * 0.6)  # past the first deadline, within this head's own
        sock.sendall(b"Host: x\r\n\r\n")
        assert _read_answer(sock).startswith(b"HTTP/1.1 200 ")


def test_a_slow_body_after_a_prompt_head_is_not_cut(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
        for byte in b"abcd":
            time.sleep(DEADLINE * 0.5)
            sock.sendall(bytes([byte]))
        assert _read_answer(sock).startswith(b"HTTP/1.1 200 ")


def test_the_deadline_is_per_server() -> None:
    fast, slow = protocol_with_header_timeout(1.0), protocol_with_header_timeout(30.0)
    assert (fast.header_timeout, slow.header_timeout) == (1.0, 30.0)
    assert asyncio.Protocol in fast.__mro__
