"""Kafka readiness without a client library: one Metadata (v4) round trip over a plain socket.

A synchronous probe is usable from any fixture (sync or inside a running event loop) and is much
cheaper than starting an aiokafka client per poll. The broker only answers on its client listener
after it has caught up with the metadata log and is unfenced, and the answer must list a broker.
"""

from __future__ import annotations

import socket
import struct

METADATA_API_KEY = 3
METADATA_VERSION = 4  # Kafka 4.0 removed v0-v3 (KIP-896); v4-v8 keep the simple non-flexible encoding
CLIENT_ID = b"portico-infra-probe"


def _request(correlation_id: int) -> bytes:
    header = struct.pack(">hhih", METADATA_API_KEY, METADATA_VERSION, correlation_id, len(CLIENT_ID))
    body = struct.pack(">ib", 0, 0)  # topics: empty array (no topic data); allow_auto_topic_creation=false
    payload = header + CLIENT_ID + body
    return struct.pack(">i", len(payload)) + payload


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        chunks += chunk
    return bytes(chunks)


def broker_count(host: str, port: int, *, timeout: float = 2.0) -> int:
    """Brokers listed in a Metadata response; raises OSError/ValueError when the broker cannot answer."""
    correlation_id = 7
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(_request(correlation_id))
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        response = _recv_exact(sock, size)
    got_correlation_id, _throttle_ms, brokers = struct.unpack_from(">iii", response, 0)
    if got_correlation_id != correlation_id:
        raise ValueError(f"unexpected correlation id {got_correlation_id}")
    return int(brokers)


def is_ready(bootstrap: str, *, timeout: float = 2.0) -> bool:
    """True when the broker at "host:port" answers Metadata with at least one live broker."""
    host, _, port = bootstrap.rpartition(":")
    try:
        return broker_count(host, int(port), timeout=timeout) > 0
    except (OSError, ValueError, struct.error):
        return False
