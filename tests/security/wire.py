"""Requests written byte by byte: the attacks an HTTP client library would refuse to send or would
normalise first (dot segments, folded or duplicated headers, conflicting body lengths)."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send_raw(url: str, request: bytes, timeout: float = 15) -> RawAnswer:
    """Write ``request`` as is to the server of ``url`` and read the answer until the server closes (the
    request should say ``Connection: close``)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout) as sock:
        sock.sendall(request)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawAnswer(int(status_line.split()[1]), headers, body)


def get(path: str, *headers: str) -> bytes:
    """A GET of ``path`` (sent exactly as given) with the header lines ``headers``."""
    lines = [f"GET {path} HTTP/1.1", "Host: portico.test", *headers, "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")
