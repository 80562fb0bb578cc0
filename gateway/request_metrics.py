"""RED metrics of the gateway's requests, labelled by route TEMPLATE (never the raw path or an id), so
the number of series stays bounded whatever clients send. Taken by the outermost layer
(:mod:`gateway.request_edge`), so they see every response, including errors written by exception
handlers, and durations carry the request's trace id as an exemplar."""

from __future__ import annotations

import time

from opentelemetry import trace
from starlette.types import Scope

from gateway.state import scope_state


def trace_exemplar() -> dict[str, str] | None:
    """The sampled current span's ids, so a slow bucket links to its trace (OpenMetrics exemplar)."""
    context = trace.get_current_span().get_span_context()
    if not (context.is_valid and context.trace_flags.sampled):
        return None
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}


_OPS = frozenset({"/health", "/ready", "/metrics", "/openapi.json", "/docs"})


def route_label(scope: Scope) -> str:
    """The matched route's template (set by the dispatcher), an operations path, or "unmatched"."""
    template = scope_state(scope).get("route_template")
    if template is not None:
        return template
    path = scope.get("path", "")
    return path if path in _OPS else "unmatched"


def record_request(scope: Scope, status: int, started: float) -> None:
    """Count the answered request and observe its duration since ``started`` (``time.perf_counter``)."""
    metrics = scope_state(scope).get("metrics")
    if metrics is not None:
        labels = (scope["method"], route_label(scope))
        metrics.request_count(*labels, str(status)).inc()
        metrics.request_duration(*labels).observe(time.perf_counter() - started, trace_exemplar())
