"""The error envelope, the error responses a route can give, and the headers every answer carries."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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


def error_responses(used: Iterable[str]) -> dict[str, Any]:
    """components/responses: one per error status some operation names, all with the error envelope."""
    wanted = set(used)
    responses: dict[str, Any] = {}
    for status, name, description in _ERRORS:
        if name not in wanted:
            continue
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


def errors_for(route: Route, has_input: bool) -> list[tuple[int, str]]:
    """The error statuses a route can answer, by component name: derived from its policy and shape.

    Every route can meet a rate limit (429), an unavailable backend or limiter (503) and an
    unexpected failure (500); the rest only where their cause exists.
    """
    policy = route.policy
    statuses = {429, 500, 503}
    if has_input:
        statuses.add(400)  # a path, query or body value the transcoder or the rules refuse
    if policy.access != options_pb2.ACCESS_PUBLIC:
        statuses |= {401, 403}
    if policy.checks_credentials:
        statuses.add(401)
    if route.matcher.field_paths:
        # The resource the path names may not exist (or be another tenant's); and a value such as
        # `.` or `..` is normalised away by clients, leaving a path no route matches.
        statuses.add(404)
    if policy.unique_fields:
        statuses.add(409)
    if route.body or policy.uploads:
        statuses |= {413, 415}
    if route.server_streaming:
        statuses.add(406)  # neither SSE nor NDJSON acceptable; a stream has no deadline, so no 504
    else:
        statuses.add(504)
    if route.client_streaming:
        statuses.add(501)  # dispatch.py: client streams are not served over REST
    return [(status, name) for status, name, _ in _ERRORS if status in statuses]
