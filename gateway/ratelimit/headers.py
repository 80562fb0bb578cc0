"""Rate-limit response headers: the legacy ``X-RateLimit-*`` trio and the IETF draft-09 fields."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from gateway.ratelimit.limits import Decision


def rate_limit_headers(decisions: Sequence[Decision]) -> dict[str, str]:
    if not decisions:
        return {}
    # The legacy trio describes the limit closest to refusing.
    tightest = min(decisions, key=lambda d: (d.remaining, -d.reset_after))
    headers = {
        "X-RateLimit-Limit": str(tightest.limit.count),
        "X-RateLimit-Remaining": str(tightest.remaining),
        "X-RateLimit-Reset": str(math.ceil(time.time() + tightest.reset_after)),
        # draft-ietf-httpapi-ratelimit-headers-09: structured-field lists, one item per policy.
        "RateLimit-Policy": ", ".join(
            f'"{d.limit.name}";q={d.limit.count};w={d.limit.period}' for d in decisions
        ),
        "RateLimit": ", ".join(
            f'"{d.limit.name}";r={d.remaining};t={math.ceil(d.reset_after)}' for d in decisions
        ),
    }
    refused = [d for d in decisions if not d.allowed]
    if refused:
        headers["Retry-After"] = str(max(1, math.ceil(max(d.retry_after for d in refused))))
    return headers
