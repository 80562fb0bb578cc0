"""The contract's error envelope, and the handlers that make every error use it."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.request_id import request_id_of
from gateway.status_table import BY_STATUS, ROUTING_MESSAGES, code_for

log = logging.getLogger(__name__)


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """``{"error": {"code", "message", "status_code", "request_id"[, "details"]}}``."""
    return JSONResponse(
        error_envelope(request, status, message, details), status_code=status, headers=headers
    )


def error_envelope(request: Request, status: int, message: str, details: Any = None) -> dict[str, Any]:
    """The envelope itself, also sent inside a stream that fails after it has started."""
    body: dict[str, Any] = {
        "code": code_for(status),
        "message": message,
        "status_code": status,
        "request_id": request_id_of(request.scope),
    }
    if details is not None:
        body["details"] = details
    return {"error": body}


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
