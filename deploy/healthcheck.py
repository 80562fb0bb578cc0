"""Container health check: ``healthcheck.py grpc <port> [service]`` (gRPC health SERVING) or
``http <url>`` (200).

``grpc <port>`` asks for the whole server (service ``""``): the backend's readiness, SERVING unless it
cannot serve (its database down; the broker's Kafka). ``grpc <port> portico.liveness`` asks for its
liveness, which follows no dependency. Kept dependency-free beyond what the image already has, and exits
0 (healthy) or 1.
"""

from __future__ import annotations

import sys
import urllib.request


def grpc_serving(port: str, service: str = "") -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a fixed local URL)
        return bool(response.status == 200)


if __name__ == "__main__":
    kind, where, *service = sys.argv[1:]
    try:
        healthy = grpc_serving(where, *service) if kind == "grpc" else http_ok(where)
    except Exception:
        healthy = False
    sys.exit(0 if healthy else 1)
