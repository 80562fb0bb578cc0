"""``HEAD`` on every ``GET`` route (RFC 9110 §9.3.2): the GET's status and headers, no body.

The dispatcher matches a HEAD as the route's GET and answers as for it; uvicorn sends the head of that
answer and drops its body, so Content-Length, ETag and the rest are the GET's. A stream's HEAD is not
opened at all: its head is known without the backend, and no client would read its events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.responses import Response


def allow_header(methods: Iterable[str]) -> str:
    """A 405's ``Allow``: the path's methods, with HEAD wherever GET is."""
    allowed = set(methods)
    if "GET" in allowed:
        allowed.add("HEAD")
    return ", ".join(sorted(allowed))


def head_of_stream(media_type: str, headers: Mapping[str, str]) -> Response:
    """What a streaming GET would start with: 200, its media type and headers, no Content-Length."""
    response = Response(status_code=200, media_type=media_type, headers=dict(headers))
    del response.headers["content-length"]
    return response
