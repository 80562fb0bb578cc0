"""One Redis round trip per request: the token's revocation marks are read by the rate-limit script.

:class:`gateway.edge_auth.EdgeAuth` verifies the token and asks the in-process revocation set; this
module composes the rest — the marks of :func:`meshkit.auth.revocation.revocation_keys` and the limits —
into one script call, and decides from its answer with :func:`meshkit.auth.revocation.revoked_by_marks`.

What is charged: a request that goes on is charged its full set (IP, user, login); a refused one (a
revoked token included) only the refusal's set (the client IP), never as an allowed request of its user.
Redis down: the revocation answer is the checker's (the loaded set decides, or fail-open, else 503), and
the local limiter charges the set that answer implies — or 503 when limiting fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.ratelimit.limiter import Keyed, MarksToRead, RedisLimiter
from gateway.ratelimit.limits import Decision
from meshkit.auth.revocation import (
    RevocationChecker,
    RevocationUnknown,
    revocation_keys,
    revoked_by_marks,
)
from meshkit.auth.tokens import Principal


@dataclass(frozen=True)
class Gated:
    decisions: list[Decision] | None  # None: rate limiting unavailable (Redis down, failing closed)
    revoked: bool = False
    unknown: bool = False  # revocation cannot be known: answer 503


async def gate(
    limiter: RedisLimiter,
    revocations: RevocationChecker,
    limits: Keyed,
    refusal: Keyed,
    principal: Principal | None,
) -> Gated:
    """Charge ``limits`` (or ``refusal``, a leading part of them, when the token is revoked) and read the
    token's revocation marks, in one Redis call. ``principal`` has passed the in-process set already."""
    if principal is None:
        return Gated(await limiter.check(limits))
    if list(limits[: len(refusal)]) != list(refusal):
        raise ValueError("the refusal's limits must lead the request's")
    marks = MarksToRead(
        revocation_keys(principal), principal.issued_at, bool(principal.session_id), len(refusal)
    )
    checked = await limiter.check_with_marks(limits, marks)
    if not checked.failed:
        assert checked.marks is not None
        return Gated(checked.decisions, revoked=revoked_by_marks(principal, checked.marks))
    try:
        revocations.unreachable()  # not revoked as far as the set knows (or fail-open)
    except RevocationUnknown:
        return Gated(limiter.local_check(refusal), unknown=True)
    return Gated(limiter.local_check(limits))
