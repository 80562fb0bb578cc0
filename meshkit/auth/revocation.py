"""Revocations in Redis: the keys written by the auth and users backends, and the checker every verifier runs.

- ``portico:revoked:jti:{<tenant>}:<jti>`` exists while a logged-out access token would still be
  unexpired.
- ``portico:valid_after:{<tenant>}:<sub>`` holds an epoch time; tokens of that user issued before it are
  dead (a deleted user, or "log out everywhere").
- ``portico:revoked:sid:{<tenant>}:<sid>`` exists when the login (refresh-token family) named by a
  token's ``sid`` claim was ended: logout, or a refresh token presented twice.

The tenant is the keys' Redis Cluster hash tag: the three marks of a token are read together (one
``MGET``, or inside the gateway's rate-limit script with its user's limits), so they must share a slot,
and the tenant is the finest part every writer knows (a jti or sid mark is written without its user).

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
from redis.exceptions import RedisError

from meshkit.auth.revocation_set import RevocationSet
from meshkit.auth.tokens import Principal
from meshkit.redis_client import RedisClient, mget_of
from meshkit.redis_keys import tenant_tag

log = logging.getLogger(__name__)

# Present while Redis holds every live mark: the auth backend sets it after re-filling Redis from its
# table, so an empty Redis (restarted without persistence) is detected and re-filled. Versioned with the
# marks' key names: after an upgrade that renamed them, auth's first start writes them under the new ones.
FILLED_KEY = "portico:revocations:filled:v2"

# Longest access-token lifetime we ever need to remember a "valid after" mark for.
VALID_AFTER_TTL_SECONDS = 7 * 24 * 3600


def revoked_jti_key(tenant_id: str, jti: str) -> str:
    return f"portico:revoked:jti:{tenant_tag(tenant_id)}:{jti}"


def revoked_sid_key(tenant_id: str, sid: str) -> str:
    return f"portico:revoked:sid:{tenant_tag(tenant_id)}:{sid}"


def valid_after_key(tenant_id: str, sub: str) -> str:
    return f"portico:valid_after:{tenant_tag(tenant_id)}:{sub}"


async def revoke_jti(redis: RedisClient, tenant_id: str, jti: str, expires_at: float) -> None:
    """Deny one access token until it would have expired anyway."""
    ttl = max(1, int(expires_at - time.time()) + 1)
    await redis.set(revoked_jti_key(tenant_id, jti), "1", ex=ttl)


async def end_sessions(redis: RedisClient, tenant_id: str, sub: str, at: float | None = None) -> None:
    """Every token of the user issued up to now stops working."""
    await redis.set(valid_after_key(tenant_id, sub), str(at or time.time()), ex=VALID_AFTER_TTL_SECONDS)


async def revoke_session(redis: RedisClient, tenant_id: str, sid: str, ttl_seconds: int) -> None:
    """Every access token of one login stops working (kept as long as such a token can live)."""
    await redis.set(revoked_sid_key(tenant_id, sid), "1", ex=max(1, ttl_seconds))


class RevocationUnknown(Exception):
    """Neither Redis nor the in-process set can say whether the token is revoked: answer 503, not 401."""


class RevocationChecker:
    """Logged-out tokens and ended sessions: the in-process set, then one Redis round trip."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        fail_open: bool,
        errors: Counter,
        local: RevocationSet | None = None,
    ) -> None:
        self._mget = mget_of(redis)
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
            values = await self._mget(*revocation_keys(principal), *also)
        except RedisError:
            return self.unreachable(), None
        return revoked_by_marks(principal, values[:3]), values[3:]

    def unreachable(self) -> bool:
        """The answer when Redis could not be read (the local set already said "not revoked"): False
        when the set is loaded or fail-open is set, else :class:`RevocationUnknown`. Counts the error."""
        self._errors.inc()
        if self.local.ready:
            return False  # the set holds every revocation published so far: it decides alone
        log.warning("revocation check unavailable", extra={"fail_open": self._fail_open})
        if self._fail_open:
            return False
        raise RevocationUnknown("revocations cannot be checked: Redis is unreachable")


def revocation_keys(principal: Principal) -> tuple[str, str, str]:
    """The three marks that can revoke a token, in the order :func:`revoked_by_marks` reads them. A
    caller may read them in its own round trip (the gateway does, inside its rate-limit script)."""
    tag = tenant_tag(principal.tenant_id)  # as the three functions above write them, made once
    return (
        f"portico:revoked:jti:{tag}:{principal.jti}",
        f"portico:valid_after:{tag}:{principal.sub}",
        f"portico:revoked:sid:{tag}:{principal.session_id or '-'}",
    )


def revoked_by_marks(principal: Principal, marks: Sequence[bytes | str | None]) -> bool:
    """Whether the marks read at :func:`revocation_keys` revoke the token."""
    revoked, valid_after, session_ended = marks
    if revoked is not None or (principal.session_id and session_ended is not None):
        return True
    return valid_after is not None and principal.issued_at <= float(valid_after)
