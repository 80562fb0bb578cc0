"""Revocations in Redis: the keys written by the auth and users backends, and the checker every verifier runs.

- ``portico:revoked:jti:<jti>`` exists while a logged-out access token would still be unexpired.
- ``portico:valid_after:<tenant>:<sub>`` holds an epoch time; tokens of that user issued before it are
  dead (a deleted user, or "log out everywhere").
- ``portico:revoked:sid:<sid>`` exists when the login (refresh-token family) named by a token's ``sid``
  claim was ended: logout, or a refresh token presented twice.

Redis is only a fast shared copy. The auth backend's database is the source of truth; every revocation
is also published on ``portico.revocations.v1`` and kept by each verifier in a :class:`RevocationSet`
(:mod:`meshkit.auth.revocation_feed`). A token is refused when either says so; while Redis is away the
set alone decides, and a verifier that has neither answers "cannot know" (:class:`RevocationUnknown`),
never "allowed" — unless ``PORTICO_REVOCATION_FAIL_OPEN`` is set.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from meshkit.auth.revocation_set import RevocationSet
from meshkit.auth.tokens import Principal

log = logging.getLogger(__name__)

# Present while Redis holds every live mark: the auth backend sets it after re-filling Redis from its
# table, so an empty Redis (restarted without persistence) is detected and re-filled.
FILLED_KEY = "portico:revocations:filled"

# Longest access-token lifetime we ever need to remember a "valid after" mark for.
VALID_AFTER_TTL_SECONDS = 7 * 24 * 3600


def revoked_jti_key(jti: str) -> str:
    return f"portico:revoked:jti:{jti}"


def revoked_sid_key(sid: str) -> str:
    return f"portico:revoked:sid:{sid}"


def valid_after_key(tenant_id: str, sub: str) -> str:
    return f"portico:valid_after:{tenant_id}:{sub}"


async def revoke_jti(redis: Redis, jti: str, expires_at: float) -> None:
    """Deny one access token until it would have expired anyway."""
    ttl = max(1, int(expires_at - time.time()) + 1)
    await redis.set(revoked_jti_key(jti), "1", ex=ttl)


async def end_sessions(redis: Redis, tenant_id: str, sub: str, at: float | None = None) -> None:
    """Every token of the user issued up to now stops working."""
    await redis.set(valid_after_key(tenant_id, sub), str(at or time.time()), ex=VALID_AFTER_TTL_SECONDS)


async def revoke_session(redis: Redis, sid: str, ttl_seconds: int) -> None:
    """Every access token of one login stops working (kept as long as such a token can live)."""
    await redis.set(revoked_sid_key(sid), "1", ex=max(1, ttl_seconds))


class RevocationUnknown(Exception):
    """Neither Redis nor the in-process set can say whether the token is revoked: answer 503, not 401."""


class RevocationChecker:
    """Logged-out tokens and ended sessions: the in-process set, then one Redis round trip."""

    def __init__(
        self,
        redis: Redis,
        *,
        fail_open: bool,
        errors: Counter,
        local: RevocationSet | None = None,
    ) -> None:
        self._redis = redis
        self._fail_open = fail_open
        self._errors = errors
        self.local = local if local is not None else RevocationSet()

    async def is_revoked(self, principal: Principal) -> bool:
        """True when revoked; raises :class:`RevocationUnknown` when it cannot be known."""
        revoked, _ = await self.check(principal)
        return revoked

    async def check(
        self, principal: Principal, also: Sequence[str] = ()
    ) -> tuple[bool, list[bytes | str | None] | None]:
        """Whether the token is revoked, and the values of the Redis keys ``also`` read in the same
        round trip (None when Redis was not asked or did not answer: the caller reads them itself).
        Raises :class:`RevocationUnknown` when it cannot be known."""
        if self.local.is_revoked(principal):
            return True, None
        try:
            values = await self._redis.mget(*revocation_keys(principal), *also)
        except RedisError:
            self._errors.inc()
            if self.local.ready:
                return False, None  # the set holds every revocation published so far: it decides alone
            log.warning("revocation check unavailable", extra={"fail_open": self._fail_open})
            if self._fail_open:
                return False, None
            raise RevocationUnknown("revocations cannot be checked: Redis is unreachable") from None
        return revoked_by(principal, values[:3]), values[3:]


def revocation_keys(principal: Principal) -> tuple[str, str, str]:
    """The three marks that can revoke a token, in the order :func:`revoked_by` reads their values."""
    return (
        revoked_jti_key(principal.jti),
        valid_after_key(principal.tenant_id, principal.sub),
        revoked_sid_key(principal.session_id or "-"),
    )


def revoked_by(principal: Principal, values: Sequence[bytes | str | None]) -> bool:
    """Whether the values of :func:`revocation_keys` revoke the token."""
    revoked, valid_after, session_ended = values
    if revoked is not None or (principal.session_id and session_ended is not None):
        return True
    return valid_after is not None and principal.issued_at <= float(valid_after)
