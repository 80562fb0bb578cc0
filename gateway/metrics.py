"""The gateway's Prometheus registry and the ``/metrics`` endpoint."""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response

from gateway.state import state_of

T = TypeVar("T", Counter, Histogram)


class Children(Generic[T]):
    """A labelled metric's children by label values, kept: ``labels()`` validates, locks and looks up
    on every call, several times per request otherwise. Bounded (labels from clients, such as the
    method, must not grow it without end): past ``size`` values, ``labels()`` is asked each time."""

    def __init__(self, metric: T, size: int = 4096) -> None:
        self._metric: T = metric
        self._children: dict[tuple[str, ...], T] = {}
        self._size = size

    def __call__(self, *values: str) -> T:
        child = self._children.get(values)
        if child is None:
            child = self._metric.labels(*values)
            if len(self._children) < self._size:
                self._children[values] = child
        return child


class GatewayMetrics:
    """Metric families of the gateway process (request metrics join them with routing)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        # No PlatformCollector: its python_info names the interpreter's version on this public port.
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "portico_gateway_requests_total",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "portico_gateway_request_duration_seconds",
            "HTTP request duration by method and route template.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "portico_gateway_upstream_errors_total",
            "Failed backend calls by backend service and gRPC status code.",
            ["backend", "grpc_code"],
            registry=self.registry,
        )
        self.upstream_retries = Counter(
            "portico_gateway_upstream_retries_total",
            "Retried backend calls (idempotent reads that met UNAVAILABLE) by backend service.",
            ["backend"],
            registry=self.registry,
        )
        self.request_count = Children(self.requests)
        self.request_duration = Children(self.duration)
        self.upstream_retry_count = Children(self.upstream_retries)


async def metrics_endpoint(request: Request) -> Response:
    # OpenMetrics (with the latency exemplars) when the scraper asks for it, else the classic text format.
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(state_of(request)["metrics"].registry), headers={"Content-Type": content_type})
