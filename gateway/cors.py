"""CORS by configuration (``PORTICO_GATEWAY_CORS_ORIGINS``), with Starlette's middleware.

It sits in front of routing, so a preflight is answered before any token check or rate limit; a refused
preflight still answers in the contract's error envelope.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from gateway.errors import error_response

ALLOW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ALLOW_HEADERS = ("Authorization", "Content-Type", "X-Request-ID", "X-Tenant-ID", "If-None-Match")
EXPOSE_HEADERS = (
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "ETag",
)


class EnvelopeCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight in the error envelope instead of plain text."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if "origin" in headers and "access-control-request-method" in headers:
                response = self.preflight_response(request_headers=headers)
                if response.status_code >= 400:  # the reason, e.g. "Disallowed CORS origin"
                    reason = bytes(response.body).decode("utf-8", "replace")
                    response = error_response(Request(scope), 400, reason, headers={"Vary": "Origin"})
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def cors_middleware(origins: str, max_age: int) -> list[Middleware]:
    """The middleware for ``origins`` (comma-separated, ``*`` for any), or none when CORS is off."""
    allowed = [origin.strip() for origin in origins.split(",") if origin.strip()]
    if not allowed:
        return []
    return [
        Middleware(
            EnvelopeCORSMiddleware,
            allow_origins=allowed,
            allow_methods=ALLOW_METHODS,
            allow_headers=ALLOW_HEADERS,
            expose_headers=EXPOSE_HEADERS,
            max_age=max_age,
            # Tokens travel in Authorization, never in cookies: no credentialed CORS needed.
            allow_credentials=False,
        )
    ]
