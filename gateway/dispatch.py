"""REST → gRPC: match the route, check the token, build the request, charge the rate limits, then call
the backend — unary (with retries for idempotent reads) or as a server stream (SSE/NDJSON).

Every route comes from the live route table (built from the backends' descriptors); there is no code
per route. The steps before the call are the same for every kind of route, so they live here once.
The bearer token, request id, client address and W3C trace context travel as metadata; the backends
verify the token themselves.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.message import Message
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from gateway.binding_fields import bind_call_fields
from gateway.calls import Metadata, call_metadata, upstream_failure
from gateway.client_ip import client_ip
from gateway.conditional import BINARY_SAFETY, not_modified
from gateway.edge_auth import REVOCATIONS_UNKNOWN, REVOKED, Refusal
from gateway.edge_gate import gate
from gateway.errors import error_envelope, error_response
from gateway.head import allow_header, head_of_stream
from gateway.inbound import Rejected, read_message
from gateway.json_response import FastJSONResponse
from gateway.ratelimit.headers import rate_limit_headers
from gateway.ratelimit.limiter import Keyed
from gateway.retry import RetryPolicy, with_retries
from gateway.routing.rules import Route
from gateway.routing.table import Match, MethodNotAllowed
from gateway.state import state_of
from gateway.status_table import METHOD_NOT_ALLOWED, ROUTE_NOT_FOUND
from gateway.streaming import STREAM_HEADERS, Framing, StreamResponse, frames, negotiate, opened, resume
from gateway.transcode.errors import ErrorReply
from gateway.transcode.response import binary_reply, json_reply
from meshkit.auth.tokens import Principal

DEFAULT_DEADLINE_S = 10.0
_SAFE_METHODS = frozenset({"GET", "HEAD"})
# nginx's "client closed request": counted apart from server errors; nobody is left to read it.
CLIENT_CLOSED_REQUEST = 499


def _error(request: Request, reply: ErrorReply, headers: dict[str, str]) -> Response:
    return error_response(request, reply.status, reply.message, details=reply.details, headers=headers)


async def _charge(
    request: Request, limits: Keyed, refusal: Keyed | None = None, principal: Principal | None = None
) -> dict[str, str] | Response:
    """The rate-limit headers, or the refusal: 429; 503 when limiting is down and fails closed; and for a
    token, its revocation read in the same Redis call (401, or 503 when it cannot be known)."""
    state = state_of(request)
    gated = await gate(state["limiter"], state["edge_auth"].revocations, limits, refusal or limits, principal)
    if gated.decisions is None:
        return error_response(request, 503, "Rate limiting is unavailable")
    headers = rate_limit_headers(gated.decisions)
    if any(not d.allowed for d in gated.decisions):
        wait = headers["Retry-After"]
        return error_response(
            request, 429, f"Rate limit exceeded. Try again in {wait} seconds.", headers=headers
        )
    for refused, why in ((gated.unknown, REVOCATIONS_UNKNOWN), (gated.revoked, REVOKED)):
        if refused:
            return error_response(request, why.status, why.message, headers={**headers, **why.headers()})
    return headers


async def dispatch(request: Request) -> Response:
    state = state_of(request)
    head = request.method == "HEAD"  # served by the GET route; uvicorn sends no body for it
    found = state["routes"].table.match(
        "GET" if head else request.method,
        request.scope.get("raw_path", b"").decode("latin-1") or request.url.path,
    )
    ip = client_ip(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        state["trusted_proxies"],
    )
    state["client_ip"] = ip
    if not isinstance(found, Match):
        charged = await _charge(request, state["edge_limits"].for_refusal(ip))
        if isinstance(charged, Response):
            return charged
        if isinstance(found, MethodNotAllowed):
            return error_response(
                request, 405, METHOD_NOT_ALLOWED, headers={**charged, "Allow": allow_header(found.allowed)}
            )
        return error_response(request, 404, ROUTE_NOT_FOUND, headers=charged)
    route = found.route
    state["route_template"] = route.template  # the metrics label: never the raw path
    state["error_shape"] = route.policy.response  # every error from here on is written in its style
    if route.client_streaming:
        return error_response(request, 501, "Client-streaming routes are not served over REST")
    media_type = negotiate(request.headers.get("accept")) if route.server_streaming else None
    if route.server_streaming and media_type is None:
        return error_response(request, 406, "This route streams text/event-stream or application/x-ndjson")

    verdict = await state["edge_auth"].check(
        route.policy, request.headers.getlist("authorization"), request.headers.getlist("x-tenant-id")
    )
    refusal = state["edge_limits"].for_refusal(ip)
    known = verdict.principal if isinstance(verdict, Refusal) else verdict
    if known is not None:
        state["user_id"] = known.sub
    if isinstance(verdict, Refusal):
        charged = await _charge(request, refusal, principal=verdict.principal)
        if isinstance(charged, Response):
            return charged
        return error_response(
            request, verdict.status, verdict.message, headers={**charged, **verdict.headers()}
        )
    principal = verdict
    try:
        message = await read_message(request, route, found.params)
        bind_call_fields(route, message, principal, request.headers.getlist("x-tenant-id"))
    except ClientDisconnect:
        return Response(status_code=CLIENT_CLOSED_REQUEST)  # the client left mid-body: not our error
    except Rejected as rejected:
        charged = await _charge(request, refusal, principal=principal)
        if isinstance(charged, Response):
            return charged
        return error_response(
            request, rejected.status, rejected.message, details=rejected.details, headers=charged
        )

    limits = state["edge_limits"].for_request(route.policy, ip, principal, message)
    charged = await _charge(request, limits, refusal, principal)
    if isinstance(charged, Response):
        return charged
    metadata = call_metadata(request, ip)
    if media_type is not None:
        if head:  # the stream's head without opening it: nothing would ever read its events
            return head_of_stream(media_type, {**charged, **STREAM_HEADERS})
        return await _stream(request, route, message, metadata, charged, media_type)
    return await _unary(request, route, message, metadata, charged)


async def _unary(
    request: Request, route: Route, message: Message, metadata: Metadata, limit_headers: dict[str, str]
) -> Response:
    state = state_of(request)
    call = state["upstreams"].unary_unary(route)
    deadline = route.policy.deadline_ms / 1000 if route.policy.deadline_ms else DEFAULT_DEADLINE_S
    settings = state["settings"]
    # Only an idempotent read is retried: the policy says the RPC is one, and the method says the
    # client asked for one (a POST binding of the same RPC is not retried).
    attempts = settings.retry_attempts if route.policy.retryable and request.method in _SAFE_METHODS else 1
    retries = state["metrics"].upstream_retry_count(route.backend)

    async def attempt(timeout: float) -> Any:
        return await call(message, metadata=metadata, timeout=timeout)

    try:
        reply: Any = await with_retries(
            attempt,
            deadline=deadline,
            policy=RetryPolicy(attempts, settings.retry_backoff_ms / 1000),
            on_retry=retries.inc,
        )
    except grpc.aio.AioRpcError as exc:
        return _error(request, upstream_failure(request, route, exc), limit_headers)

    shape = route.policy.response
    if shape.binary.data_field:
        binary = binary_reply(reply, shape)
        headers = {**limit_headers, **BINARY_SAFETY, **({"ETag": f'"{binary.etag}"'} if binary.etag else {})}
        if shape.cache_control:
            headers["Cache-Control"] = shape.cache_control
        if binary.etag and not_modified(request.headers.get("if-none-match", ""), headers["ETag"]):
            return Response(status_code=304, headers=headers)
        return Response(
            binary.data, status_code=binary.status, media_type=binary.content_type, headers=headers
        )
    shaped = json_reply(reply, response_body=route.response_body, shape=shape)
    headers = {**limit_headers, **({"Cache-Control": shape.cache_control} if shape.cache_control else {})}
    return FastJSONResponse(shaped.body, status_code=shaped.status, headers=headers)


async def _stream(
    request: Request,
    route: Route,
    message: Message,
    metadata: Metadata,
    limit_headers: dict[str, str],
    media_type: str,
) -> Response:
    state = state_of(request)
    resume(message, request.headers.get("last-event-id"))
    call = state["upstreams"].unary_stream(route)(
        message,
        metadata=metadata,
        timeout=route.policy.deadline_ms / 1000 if route.policy.deadline_ms else None,
    )
    first = await opened(call)
    if first.done() and isinstance(failure := first.exception(), grpc.aio.AioRpcError):
        return _error(request, upstream_failure(request, route, failure), limit_headers)

    def in_stream_error(exc: grpc.aio.AioRpcError) -> dict[str, Any]:
        reply = upstream_failure(request, route, exc)
        return error_envelope(request, reply.status, reply.message, reply.details)

    body = frames(
        call,
        first,
        Framing(media_type, route.policy.response.sse_id_field),
        state["settings"].stream_keepalive_seconds,
        in_stream_error,
    )
    return StreamResponse(body, media_type=media_type, headers={**limit_headers, **STREAM_HEADERS})
