"""A SERVER span per HTTP request, continuing the caller's W3C ``traceparent``.

Pure ASGI and outermost, so the span is the current context for everything below it: the request
metrics take its trace id as an exemplar, and the gRPC call to the backend (whose metadata gets
``propagate.inject`` of the current context) becomes its child.
"""

from __future__ import annotations

from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.request_metrics import route_label


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def _start_attributes(scope: Scope, headers: dict[str, str]) -> dict[str, str | int]:
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


class TracingMiddleware:
    def __init__(self, app: ASGIApp, tracer_provider: TracerProvider | None = None) -> None:
        self.app = app
        self.tracer = trace.get_tracer("portico.gateway", tracer_provider=tracer_provider)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        method = scope["method"]
        with self.tracer.start_as_current_span(
            method,  # renamed to "METHOD template" once the route is known
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            attributes=_start_attributes(scope, headers),
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            status = 500  # if the app dies before answering, that is what the client gets

            async def capture(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await self.app(scope, receive, capture)
            finally:
                route = route_label(scope)
                if route != "unmatched":
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:  # a 4xx is the client's error, not the server span's
                    span.set_status(Status(StatusCode.ERROR))
