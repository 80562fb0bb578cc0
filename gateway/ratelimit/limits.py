"""Limit definitions (``N/second|minute|hour|day``) and the GCRA arithmetic shared by both limiters.

GCRA keeps one number per key, the theoretical arrival time (TAT). Each request moves it by the emission
interval ``period / count``; a request is allowed while the TAT stays within ``period`` of now, so a
client may burst up to ``count`` requests and then gets one every ``period / count``. No fixed windows,
no edge bursts at window boundaries.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")


@dataclass(frozen=True)
class Limit:
    name: str  # "ip", "user", "login": the IETF RateLimit policy name
    count: int
    period: int  # seconds

    @property
    def interval(self) -> float:
        return self.period / self.count


def parse_limit(name: str, spec: str) -> Limit:
    match = _SPEC.match(spec)
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"rate limit {spec!r}: expected N/second|minute|hour|day with N ≥ 1")
    return Limit(name, int(match.group(1)), _PERIODS[match.group(2)])


@dataclass(frozen=True)
class Decision:
    limit: Limit
    allowed: bool
    remaining: int
    reset_after: float  # seconds until the limit is fully replenished
    retry_after: float  # seconds until a request would be allowed (0 when allowed)


def gcra(limit: Limit, tat: float, now: float) -> tuple[Decision, float]:
    """The decision for one request and the TAT to store if every limit allows it."""
    start = max(tat, now)
    new_tat = start + limit.interval
    allowed = new_tat - now <= limit.period + 1e-9
    if allowed:
        remaining = math.floor((limit.period - (new_tat - now)) / limit.interval + 1e-9)
        return Decision(limit, True, max(remaining, 0), new_tat - now, 0.0), new_tat
    retry = new_tat - now - limit.period
    remaining_now = max(math.floor((limit.period - (start - now)) / limit.interval + 1e-9), 0)
    return Decision(limit, False, remaining_now, start - now, retry), tat
