"""The access log: one structured line per answered request, through the process's logging setup.

Fields: ``method``, ``route`` (the matched template, an operations path or ``unmatched``: never the raw
path, which carries ids, nor the query string, which can carry secrets), ``status``, ``duration_ms``,
``request_id``, ``client_ip`` (as the rate limits see it), ``user_id`` (the token's ``sub``, once the
token is verified); the JSON formatter adds ``trace_id``/``span_id`` of the request's span, current while
the line is written. No header, token or body is ever read for it.

Sampling: each request is logged with probability ``access_log_sample_ratio``, drawn per request; a 5xx
is always logged, so every server error has its line next to the request id the client got.
"""

from __future__ import annotations

import logging
import random
import time

from starlette.datastructures import Headers
from starlette.types import Scope

from gateway.client_ip import client_ip
from gateway.request_metrics import route_label
from gateway.state import scope_state

log = logging.getLogger("gateway.access")


class AccessLog:
    __slots__ = ("_ratio",)

    def __init__(self, sample_ratio: float) -> None:
        self._ratio = sample_ratio

    def sampled(self, status: int) -> bool:
        return status >= 500 or self._ratio >= 1.0 or random.random() < self._ratio  # noqa: S311 (not security)

    def record(self, scope: Scope, status: int, started: float, request_id: str) -> None:
        """Log the answered request when it is sampled (and INFO is enabled)."""
        if not (self.sampled(status) and log.isEnabledFor(logging.INFO)):
            return
        state = scope_state(scope)
        method = scope["method"]
        route = route_label(scope)
        # Logger.info without its findCaller (a stack walk per line, for a caller that is always here).
        record = log.makeRecord(
            log.name,
            logging.INFO,
            __file__,
            0,
            "%s %s %d",
            (method, route, status),
            None,
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "request_id": request_id,
                "client_ip": state.get("client_ip") or _client_ip(scope),
                "user_id": state.get("user_id", ""),
            },
        )
        log.handle(record)


def _client_ip(scope: Scope) -> str:
    """The address of a request the dispatcher did not see (an operations route), derived as it does."""
    peer = scope.get("client")
    trusted = scope_state(scope).get("trusted_proxies", ())
    forwarded = Headers(scope=scope).get("x-forwarded-for") if trusted else None
    return client_ip(peer[0] if peer else None, forwarded, trusted)
