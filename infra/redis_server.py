"""Redis command line and readiness: Debian's redis-server as our own process, nothing persisted."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path


def redis_server_bin() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("redis-server not found: run `python -m infra install --only redis`")
    return found


def redis_cli_bin() -> str:
    found = shutil.which("redis-cli")
    if found is None:
        raise RuntimeError("redis-cli not found: run `python -m infra install --only redis`")
    return found


def server_argv(*, port: int, data_dir: Path) -> list[str]:
    """No RDB snapshots, no AOF: the cache is disposable, and fsyncs would only slow tests down."""
    return [
        redis_server_bin(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data_dir),
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
    ]


def url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def is_ready(port: int, *, timeout: float = 1.0) -> bool:
    """PING answered with +PONG (a real command round trip, not just an open port)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
