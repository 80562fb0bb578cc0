"""The error envelope, the error responses a route can give, and the headers every answer carries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway.routing.rules import Route
from gateway.status_table import ERROR_CODES, HTTP_ERRORS
from stubs.portico.gateway.v1 import options_pb2

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error answer (gateway/errors.py). `details` lists per-field problems of a 400.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "enum": list(ERROR_CODES)},
                "message": {"type": "string"},
                "status_code": {"type": "integer", "minimum": 400, "maximum": 599},
                "request_id": {"type": "string"},
                "details": {},
            },
            "required": ["code", "message", "status_code", "request_id"],
        }
    },
    "required": ["error"],
}

_INTEGER = {"type": "integer"}
_STRING = {"type": "string"}
# components/headers: documented on every API answer (the rate limiter stamps them once it has run).
RATE_LIMIT_HEADERS: dict[str, Any] = {
    "X-Request-ID": {"description": "The caller's request id, or a generated one.", "schema": _STRING},
    "X-RateLimit-Limit": {"description": "Requests allowed by the tightest limit.", "schema": _INTEGER},
    "X-RateLimit-Remaining": {"description": "Requests left under the tightest limit.", "schema": _INTEGER},
    "X-RateLimit-Reset": {
        "description": "When the tightest limit is full again (epoch s).",
        "schema": _INTEGER,
    },
    "RateLimit-Policy": {"description": "IETF draft-09: every limit applied.", "schema": _STRING},
    "RateLimit": {"description": "IETF draft-09: the state of every limit applied.", "schema": _STRING},
}


def _documented() -> Iterator[tuple[int, str, str]]:
    """(status, component name, description) of every error a route can document, in status order."""
    for error in HTTP_ERRORS:
        if error.response is not None:
            yield error.status, error.response, error.description


_ERRORS: tuple[tuple[int, str, str], ...] = tuple(_documented())


def headers_ref() -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in RATE_LIMIT_HEADERS}


def error_responses() -> dict[str, Any]:
    """components/responses: one per error status, all with the error envelope."""
    responses: dict[str, Any] = {}
    for status, name, description in _ERRORS:
        headers = headers_ref()
        if status == 401:
            headers["WWW-Authenticate"] = {"schema": _STRING}
        if status == 429:
            headers["Retry-After"] = {"description": "Seconds to wait.", "schema": _INTEGER}
        responses[name] = {
            "description": description,
            "headers": headers,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return responses


def errors_for(route: Route) -> list[tuple[int, str]]:
    """The error statuses a route can answer, by component name."""
    # 401 also on public routes: a wrong login or a spent refresh token is one.
    statuses = {400, 401, 404, 429, 500, 501, 503, 504}
    if route.policy.access != options_pb2.ACCESS_PUBLIC:
        statuses.add(403)
    if route.body:
        statuses |= {413, 415}
    if route.http_method in ("POST", "PUT", "PATCH", "DELETE"):
        statuses.add(409)
    if route.policy.uploads:
        statuses |= {413, 415}
    return [(status, name) for status, name, _ in _ERRORS if status in statuses]
