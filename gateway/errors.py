"""The contract's error envelope, and the handlers that make every error use it.

A matched route whose response shape sets an error style or error messages (a seed's dialect, e.g.
FastAPI's ``{"detail": …}``) has its errors written that way instead; the status code is the same.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.json_response import FastJSONResponse
from gateway.request_id import request_id_of
from gateway.state import scope_state
from gateway.status_table import BY_STATUS, ROUTING_MESSAGES, code_for
from stubs.portico.gateway.v1 import options_pb2

log = logging.getLogger(__name__)


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> FastJSONResponse:
    """``{"error": {"code", "message", "status_code", "request_id"[, "details"]}}``."""
    return FastJSONResponse(
        error_envelope(request, status, message, details), status_code=status, headers=headers
    )


def error_envelope(request: Request, status: int, message: str, details: Any = None) -> dict[str, Any]:
    """The envelope itself (or the matched route's error style), also sent inside a stream that fails
    after it has started."""
    code = code_for(status)
    shape = scope_state(request.scope).get("error_shape")
    if shape is not None:
        message = shape.error_messages.get(code, message)
        if shape.error_style == options_pb2.ERROR_STYLE_DETAIL:
            return {"detail": _detail_items(details) if details else message}
    body: dict[str, Any] = {
        "code": code,
        "message": message,
        "status_code": status,
        "request_id": request_id_of(request.scope),
    }
    if details is not None:
        body["details"] = details
    return {"error": body}


def _detail_items(details: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Per-field problems as FastAPI lists them: where (``loc``), what (``msg``) and a ``type``."""
    return [
        {"loc": ["body", *item["field"].split(".")], "msg": item["description"], "type": "value_error"}
        for item in details
    ]


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(
        request,
        exc.status_code,
        ROUTING_MESSAGES.get(exc.status_code, str(exc.detail)),
        headers=dict(exc.headers) if exc.headers else None,
    )


async def unhandled_exception_handler(request: Request, exc: Exception) -> Response:
    # The client gets a generic message; the details stay in the log, next to the request id.
    log.exception("unhandled error", extra={"request_id": request_id_of(request.scope)})
    return error_response(request, 500, BY_STATUS[500].message)


class UnhandledErrorMiddleware:
    """Innermost middleware: an exception no handler took becomes the 500 envelope here.

    Starlette's own catch-all (``ServerErrorMiddleware``, the ``Exception`` handler) sits outside every
    other middleware: its 500 lacks ``X-Request-ID``, and it re-raises, so uvicorn logs the error twice
    and closes the keep-alive connection. Answering here keeps the request id, the metrics and the
    connection. A response already started cannot be replaced: that error goes on up.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:
                raise
            trace.get_current_span().record_exception(exc)  # the server span, as if it had seen it
            response = await unhandled_exception_handler(Request(scope, receive), exc)
            await response(scope, receive, send)
