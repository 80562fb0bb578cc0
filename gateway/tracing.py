"""A SERVER span per HTTP request, continuing the caller's W3C ``traceparent``.

Opened by the outermost layer (:mod:`gateway.request_edge`), so the span is the current context for
everything below it: the request metrics take its trace id as an exemplar, and the gRPC call to the
backend (whose metadata gets ``propagate.inject`` of the current context) becomes its child.
"""

from __future__ import annotations

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode
from starlette.types import Scope

from gateway.request_metrics import route_label

TRACER_NAME = "portico.gateway"


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lowercase name (the last of a repeated one), decoded as Latin-1."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def caller_context(headers: dict[str, str]) -> Context:
    """The caller's trace context (``traceparent``, baggage), parent of the server span."""
    return propagate.extract(headers)


def start_attributes(scope: Scope, headers: dict[str, str]) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "http.request.method": scope["method"],
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    if server := scope.get("server"):
        attributes["server.address"], attributes["server.port"] = server[0], server[1]
    if client := scope.get("client"):
        attributes["client.address"] = client[0]
    if agent := headers.get("user-agent"):
        attributes["user_agent.original"] = agent
    return attributes


def finish_span(span: Span, scope: Scope, method: str, status: int) -> None:
    """Name the span by route template (never the raw path) and record the answer's status."""
    route = route_label(scope)
    if route != "unmatched":
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:  # a 4xx is the client's error, not the server span's
        span.set_status(Status(StatusCode.ERROR))
