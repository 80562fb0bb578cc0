"""Prometheus RED metrics (rate, errors, duration) per gRPC method, as a ``grpc.aio`` interceptor.

Names follow go-grpc-prometheus (``grpc_server_handled_total`` …) so existing dashboards and alerts fit.
Labels come from the registered method name, never from request data, so cardinality stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from meshkit.rpc.context import Context
from meshkit.rpc.interceptors.base import Stream, Unary, WrappingInterceptor, call_code

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GrpcServerMetrics:
    """The metric families; one instance per registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("grpc_service", "grpc_method", "grpc_type")
        self.started = Counter(
            "grpc_server_started_total", "RPCs started on the server.", labels, registry=registry
        )
        self.handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by status code.",
            (*labels, "grpc_code"),
            registry=registry,
        )
        self.duration = Histogram(
            "grpc_server_handling_seconds",
            "Time to complete an RPC on the server.",
            labels,
            buckets=_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "grpc_server_in_flight", "RPCs being handled right now.", labels[:2], registry=registry
        )


def _exemplar() -> dict[str, str] | None:
    """Link the histogram sample to the active trace (shown by Grafana as an exemplar)."""
    ctx = trace.get_current_span().get_span_context()
    return {"trace_id": format(ctx.trace_id, "032x")} if ctx.is_valid and ctx.trace_flags.sampled else None


class _MethodMetrics:
    """One method's metric children, looked up once: ``labels()`` per call takes a lock and builds a key."""

    def __init__(self, metrics: GrpcServerMetrics, labels: tuple[str, str, str]) -> None:
        self._metrics, self._labels = metrics, labels
        self.started = metrics.started.labels(*labels)
        self.duration = metrics.duration.labels(*labels)
        self.in_flight = metrics.in_flight.labels(*labels[:2])
        self._handled: dict[str, Any] = {}

    def handled(self, code: str) -> Any:
        child = self._handled.get(code)
        if child is None:  # at most one per status code
            child = self._handled[code] = self._metrics.handled.labels(*self._labels, code)
        return child


class MetricsInterceptor(WrappingInterceptor):
    """Counts and times unary and server-streaming calls."""

    def __init__(self, metrics: GrpcServerMetrics) -> None:
        self._m = metrics
        # By method path; only registered methods get here (an unknown one has no handler to wrap).
        self._methods: dict[tuple[str, str], _MethodMetrics] = {}

    def _method(self, path: str, kind: str) -> _MethodMetrics:
        found = self._methods.get((path, kind))
        if found is None:
            service, _, method = path.lstrip("/").partition("/")
            found = self._methods[(path, kind)] = _MethodMetrics(self._m, (service, method, kind))
        return found

    @staticmethod
    def _finish(m: _MethodMetrics, started: float, code: str) -> None:
        m.handled(code).inc()
        m.duration.observe(time.perf_counter() - started, exemplar=_exemplar())
        m.in_flight.dec()

    @staticmethod
    def _begin(m: _MethodMetrics) -> float:
        m.started.inc()
        m.in_flight.inc()
        return time.perf_counter()

    def wrap_unary(self, behavior: Unary, method: str) -> Unary:
        m = self._method(method, "unary")

        async def unary(request: Any, context: Context) -> Any:
            started = self._begin(m)
            error: BaseException | None = None
            try:
                return await behavior(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._finish(m, started, call_code(context, error).name)

        return unary

    def wrap_stream(self, behavior: Stream, method: str) -> Stream:
        m = self._method(method, "server_stream")

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            started = self._begin(m)
            error: BaseException | None = None
            try:
                async for item in behavior(request, context):
                    yield item
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._finish(m, started, call_code(context, error).name)

        return stream
