"""What every backend call shares, unary or streaming: the metadata it carries and how a failure is
counted, logged and turned into the client's error."""

from __future__ import annotations

import logging

import grpc
from opentelemetry import propagate
from starlette.requests import Request

from gateway.request_id import request_id_of
from gateway.routing.rules import Route
from gateway.state import state_of
from gateway.transcode.errors import ErrorReply, from_rpc_error
from meshkit.rpc.forwarding import forwarder_metadata

log = logging.getLogger(__name__)

Metadata = tuple[tuple[str, str], ...]


def call_metadata(request: Request, client_address: str) -> Metadata:
    """The bearer token, request id, client address (with the forwarding secret) and W3C trace context, as
    gRPC metadata."""
    carried: dict[str, str] = {}
    # The current context holds the gateway's SERVER span (tracing.py), itself the child of the caller's
    # traceparent: injecting it makes the backend's span a child of the gateway's, one tree end to end.
    propagate.inject(carried)
    pairs = [(k, v) for k, v in carried.items()]
    if authorization := request.headers.get("authorization"):
        pairs.append(("authorization", authorization))
    pairs.append(("x-request-id", request_id_of(request.scope)))
    if client_address:
        pairs.append(("x-client-ip", client_address))
        # The backends believe x-client-ip only from a forwarder that proves itself (meshkit.rpc.forwarding).
        pairs.extend(forwarder_metadata(state_of(request)["settings"].forwarding_secret))
    return tuple(pairs)


def upstream_failure(request: Request, route: Route, exc: grpc.aio.AioRpcError) -> ErrorReply:
    """Count the failed call by backend and code, log server-side failures, and map the status."""
    state_of(request)["metrics"].upstream_errors.labels(route.backend, exc.code().name).inc()
    error = from_rpc_error(exc)
    if error.status >= 500:
        log.warning(
            "upstream call failed",
            extra={
                "method": route.grpc_method,
                "code": exc.code().name,
                "request_id": request_id_of(request.scope),
            },
        )
    return error
