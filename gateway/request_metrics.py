"""RED metrics of the gateway's requests, labelled by route TEMPLATE (never the raw path or an id), so
the number of series stays bounded whatever clients send. Pure ASGI, so it sees every response,
including errors written by exception handlers. Inside the tracing middleware, so durations carry the
request's trace id as an exemplar."""

from __future__ import annotations

import time

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app dies before answering, that is what the client gets

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            metrics = scope_state(scope).get("metrics")
            if metrics is not None:
                labels = (scope["method"], route_label(scope))
                metrics.request_count(*labels, str(status)).inc()
                metrics.request_duration(*labels).observe(time.perf_counter() - started, trace_exemplar())
