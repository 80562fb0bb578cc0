"""REST → gRPC for unary routes: match, transcode, call the backend with a deadline, shape the answer.

Every route comes from the live route table (built from the backends' descriptors); there is no code
per route. The bearer token, request id, client address and W3C trace context travel as metadata; the
backends verify the token themselves.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from opentelemetry import propagate
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from backends.kit.tokens import Principal
from gateway.client_ip import client_ip
from gateway.edge_auth import EdgeAuth, Refusal
from gateway.errors import error_response
from gateway.ratelimit.headers import rate_limit_headers
from gateway.ratelimit.limiter import RedisLimiter
from gateway.routes import LiveRoutes
from gateway.routing.table import Match, MethodNotAllowed
from gateway.transcode.errors import ErrorReply, from_rpc_error, from_transcode_error
from gateway.transcode.request import build_request
from gateway.transcode.response import binary_reply, json_reply
from gateway.transcode.violations import TranscodeError

log = logging.getLogger(__name__)

DEFAULT_DEADLINE_S = 10.0
_JSON = "application/json"


class BodyTooLarge(Exception):
    pass


def _message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused once it passes ``limit`` bytes (counted while reading, not from a header)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _metadata(request: Request, client_address: str) -> tuple[tuple[str, str], ...]:
    carried: dict[str, str] = {}
    propagate.inject(carried, context=propagate.extract(request.headers))  # continue the caller's trace
    pairs = [(k, v) for k, v in carried.items()]
    if authorization := request.headers.get("authorization"):
        pairs.append(("authorization", authorization))
    pairs.append(("x-request-id", request.state.request_id))
    if client_address:
        pairs.append(("x-client-ip", client_address))
    return tuple(pairs)


def _error(request: Request, reply: ErrorReply) -> Response:
    return error_response(request, reply.status, reply.message, details=reply.details)


async def dispatch(request: Request) -> Response:
    routes: LiveRoutes = request.state.routes
    found = routes.table.match(
        request.method, request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    )
    if isinstance(found, MethodNotAllowed):
        return error_response(request, 405, "Method not allowed", headers={"Allow": ", ".join(found.allowed)})
    if not isinstance(found, Match):
        return error_response(request, 404, "Route not found")
    route = found.route
    request.state.route_template = route.template  # the metrics label: never the raw path
    if route.server_streaming or route.client_streaming:
        return error_response(request, 501, "This route streams; streaming is not served yet")
    edge: EdgeAuth = request.state.edge_auth
    verdict = await edge.check(
        route.policy, request.headers.get("authorization"), request.headers.get("x-tenant-id")
    )
    if isinstance(verdict, Refusal):
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if verdict.status == 401 else None
        return error_response(request, verdict.status, verdict.message, headers=headers)

    settings = request.state.settings
    try:
        body = await _read_body(request, settings.max_body_bytes)
    except BodyTooLarge:
        return error_response(request, 413, f"The body is larger than {settings.max_body_bytes} bytes")
    if body.strip() and route.body:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != _JSON:
            return error_response(request, 415, "The body must be application/json")
    try:
        message = build_request(
            _message_class(route.input),
            body_rule=route.body,
            path=found.params,
            query=request.query_params.multi_items(),
            body=body,
        )
    except TranscodeError as exc:
        return _error(request, from_transcode_error(exc))

    ip = client_ip(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        request.state.trusted_proxies,
    )
    principal = verdict if isinstance(verdict, Principal) else None
    limiter: RedisLimiter = request.state.limiter
    decisions = await limiter.check(
        request.state.edge_limits.for_request(route.policy, ip, principal, message)
    )
    if decisions is None:
        return error_response(request, 503, "Rate limiting is unavailable")
    limit_headers = rate_limit_headers(decisions)
    refused = [d for d in decisions if not d.allowed]
    if refused:
        wait = limit_headers["Retry-After"]
        return error_response(
            request, 429, f"Rate limit exceeded. Try again in {wait} seconds.", headers=limit_headers
        )

    channel: grpc.aio.Channel = request.state.upstreams.for_service(route.backend)
    call = channel.unary_unary(
        route.grpc_method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=_message_class(route.output).FromString,
    )
    deadline = route.policy.deadline_ms / 1000 if route.policy.deadline_ms else DEFAULT_DEADLINE_S
    try:
        reply: Any = await call(message, metadata=_metadata(request, ip), timeout=deadline)
    except grpc.aio.AioRpcError as exc:
        request.state.metrics.upstream_errors.labels(route.backend, exc.code().name).inc()
        error = from_rpc_error(exc)
        if error.status >= 500:
            log.warning(
                "upstream call failed",
                extra={
                    "method": route.grpc_method,
                    "code": exc.code().name,
                    "request_id": request.state.request_id,
                },
            )
        response = _error(request, error)
        response.headers.update(limit_headers)
        return response

    shape = route.policy.response
    if shape.binary.data_field:
        binary = binary_reply(reply, shape)
        headers = {**limit_headers, **({"ETag": f'"{binary.etag}"'} if binary.etag else {})}
        if shape.cache_control:
            headers["Cache-Control"] = shape.cache_control
        if binary.etag and request.headers.get("if-none-match") == headers.get("ETag"):
            return Response(status_code=304, headers=headers)
        return Response(
            binary.data, status_code=binary.status, media_type=binary.content_type, headers=headers
        )
    shaped = json_reply(reply, response_body=route.response_body, shape=shape)
    headers = {**limit_headers, **({"Cache-Control": shape.cache_control} if shape.cache_control else {})}
    return JSONResponse(shaped.body, status_code=shaped.status, headers=headers)
