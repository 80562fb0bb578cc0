"""The gateway's Prometheus registry and the ``/metrics`` endpoint."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response


class GatewayMetrics:
    """Metric families of the gateway process (request metrics join them with routing)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.dependency_up = Gauge(
            "portico_gateway_dependency_up",
            "1 when the dependency answered the last readiness probe, else 0.",
            ["dependency"],
            registry=self.registry,
        )


async def metrics_endpoint(request: Request) -> Response:
    registry = request.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
