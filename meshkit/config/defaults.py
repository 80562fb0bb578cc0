"""Ports and limits of the mesh as plain constants (standard library only).

The settings classes take their defaults from here, and so do the scripts, the test harness and the
deployment checks, so a port or a limit is written once.
"""

from __future__ import annotations

from typing import Final

LOOPBACK: Final = "127.0.0.1"
MiB: Final = 1024 * 1024

GATEWAY_PORT: Final = 8080
# gRPC port and Prometheus port of each backend.
BACKEND_PORTS: Final[dict[str, int]] = {"users": 50051, "auth": 50052, "posts": 50053, "broker": 50054}
METRICS_PORTS: Final[dict[str, int]] = {"users": 9101, "auth": 9102, "posts": 9103, "broker": 9104}

KAFKA_PORT: Final = 9092
KAFKA_CONTROLLER_PORT: Final = 9093
REDIS_PORT: Final = 6379
POSTGRES_PORT: Final = 5432
KAFKA_BOOTSTRAP: Final = f"{LOOPBACK}:{KAFKA_PORT}"
REDIS_URL: Final = f"redis://{LOOPBACK}:{REDIS_PORT}/0"

# The public contract's image limit: a larger upload is refused with 413 by the gateway and with
# RESOURCE_EXHAUSTED by the posts backend.
MAX_IMAGE_BYTES: Final = 5 * MiB
# The most an operator may raise the posts backend's image limit to: an image must still fit in one
# gRPC message together with the rest of the request.
MAX_IMAGE_BYTES_CEILING: Final = 6 * MiB
# Largest width times height of an image that is decoded (decompression bombs).
MAX_IMAGE_PIXELS: Final = 40_000_000
# Largest gRPC message a backend or the gateway sends or receives: an image plus room for the rest.
GRPC_MAX_MESSAGE_BYTES: Final = 8 * MiB


def local_target(backend: str) -> str:
    """``host:port`` of ``backend`` on this machine at its default port."""
    return f"{LOOPBACK}:{BACKEND_PORTS[backend]}"
