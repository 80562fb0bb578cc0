"""Brute-force protection for logins: sliding windows of failures per account and per client IP in Redis.

- Failures are counted per account: a known account by its user id, so its username and its email (and
  a name it held before a rename) spend one budget, and no other account shares it; a name no account
  has, by the name's identity key (:class:`Account`).
- An account with ``account_limit`` failures in the window is locked for ``base * 2^(failures - limit)``
  seconds after its last failure, capped at ``max_lockout_seconds``. The lockout is always temporary:
  failures age out of the window (and the key expires), so an attacker can delay a user, never disable
  them for good.
- A client IP with ``ip_limit`` failures in the window is refused until enough of them age out. IPv6
  clients are counted per /64, the block one subscriber usually gets.
- Only attempts that tested a password count. The service calls ``failed`` for a refused attempt too
  (so that it looks like any other failure); counting it would let every retry during a lockout extend
  the lockout, so a user or a client polling a locked account would never get back in. ``check``
  remembers its refusal in a context variable, which the same request's ``failed`` then finds.
- Each call is one Lua script (one round trip; on a Redis Cluster one per set, sent together); the time
  is the Redis server's, shared by every process.
  A success clears the account's failures, and costs no call when this request's ``check`` found none
  (a failure counted meanwhile by a concurrent attempt then stays: stricter, never looser).
- Each set keeps only as many failures as can still change the answer, so a flood cannot grow it.
- When Redis fails or is slow, ``check`` lets the attempt through (fail open): the argon2 cost still
  bounds guessing, and logins keep working. The outage is counted and logged once, not per attempt.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError

from meshkit.redis_client import RedisClient, is_cluster
from meshkit.redis_keys import key_part

log = logging.getLogger(__name__)

# KEYS: the account set when ARGV[9] is '1', then the IP set when there is one.
# ARGV: record ('1' adds a failure), member, window ms, account limit, IP limit, base lockout ms,
#       max lockout ms, account cap (the IP cap is its limit), '1' when KEYS[1] is the account set.
# Returns {wait, the account's failures}: wait is 0 when the next attempt may proceed, else the ms it must
# wait (-1: the IP limit; it waits for the window to slide). On a Redis Cluster the two sets are in
# different slots (the account's is tagged by its tenant): the script then runs once for each, together.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[3])
local function count(key, cap)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if ARGV[1] == '1' then
    redis.call('ZADD', key, now, ARGV[2])
    redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
    redis.call('PEXPIRE', key, window)
  end
  return redis.call('ZCARD', key)
end
local limit = tonumber(ARGV[4])
local failures, wait, ip = 0, 0, 1
if ARGV[9] == '1' then
  ip = 2
  failures = count(KEYS[1], tonumber(ARGV[8]))
  if failures >= limit then
    local last = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
    local lockout = math.min(tonumber(ARGV[6]) * 2 ^ (failures - limit), tonumber(ARGV[7]))
    wait = math.max(0, math.ceil(last + lockout - now))
  end
end
if KEYS[ip] and count(KEYS[ip], tonumber(ARGV[5])) >= tonumber(ARGV[5]) then
  return {-1, failures}
end
return {wait, failures}
"""

# The (account key, IP key) of the attempt this task's last ``check`` refused, if it refused one.
_refused: ContextVar[tuple[str, str | None] | None] = ContextVar("login_throttle_refused", default=None)
# The account key whose failures this task's last ``check`` found to be none: nothing to clear on success.
_clean: ContextVar[str | None] = ContextVar("login_throttle_clean", default=None)


@dataclass(frozen=True)
class Account:
    """Whose failure budget a login attempt spends: the account found (by user id), else the name tried."""

    user_id: str = ""
    name: str = ""  # the identity key of the name tried (``meshkit.identity.login_account``), if no account

    def key(self) -> str:
        # Two kinds, two prefixes: a name that looks like a user id still cannot spend that user's budget.
        return f"id:{key_part(self.user_id)}" if self.user_id else f"name:{key_part(self.name)}"


class LoginThrottle:
    def __init__(
        self,
        redis: RedisClient,
        *,
        account_limit: int = 5,
        ip_limit: int = 50,
        window_seconds: float = 900,
        base_lockout_seconds: float = 30,
        max_lockout_seconds: float = 900,
        timeout_seconds: float = 0.5,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if min(account_limit, ip_limit) < 1 or min(window_seconds, base_lockout_seconds) <= 0:
            raise ValueError("limits must be >= 1 and durations > 0")
        self._script = redis.register_script(_SCRIPT)
        self._redis = redis
        self._cluster = is_cluster(redis)
        self._timeout = timeout_seconds
        base_ms = max(1, round(base_lockout_seconds * 1000))
        max_ms = max(base_ms, round(max_lockout_seconds * 1000))
        # Once base * 2^k reaches the cap, older failures cannot lengthen the lockout any more.
        account_cap = account_limit + math.ceil(math.log2(max_ms / base_ms)) + 1
        self._args = [round(window_seconds * 1000), account_limit, ip_limit, base_ms, max_ms, account_cap]
        self._unavailable = False
        self.errors = 0  # Redis failures; also exported when a registry is given
        self._errors = (
            Counter(
                "portico_login_throttle_errors_total",
                "Login throttle calls that could not reach Redis (checks then let the attempt through).",
                registry=registry,
            )
            if registry is not None
            else None
        )

    @staticmethod
    def account_key(tenant_id: str, account: Account) -> str:
        return f"portico:auth:fail:acct:{{{key_part(tenant_id)}}}:{account.key()}"

    @staticmethod
    def ip_key(ip: str) -> str | None:
        """None for an unknown address: one shared bucket would let anyone lock out everyone."""
        ip = ip.strip()
        if not ip:
            return None
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:  # not an address (a test double, a proxy's token): keyed as it is
            return f"portico:auth:fail:ip:{key_part(ip.lower())}"
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            else:
                return f"portico:auth:fail:ip:{ipaddress.IPv6Network((address.packed, 64), strict=False)}"
        return f"portico:auth:fail:ip:{address}"

    async def _run(self, record: bool, keys: tuple[str, str | None]) -> tuple[int, int] | None:
        """(ms to wait, the account's failures), or None when Redis cannot say."""
        account, ip = keys
        args = ["1" if record else "0", secrets.token_hex(8), *self._args]
        try:
            async with asyncio.timeout(self._timeout):
                if self._cluster and ip is not None:
                    (wait, failures), (ip_wait, _) = await asyncio.gather(
                        self._script(keys=[account], args=[*args, "1"]),
                        self._script(keys=[ip], args=[*args, "0"]),
                    )
                    wait = ip_wait if int(ip_wait) < 0 else wait
                else:
                    both = [account] if ip is None else [account, ip]
                    wait, failures = await self._script(keys=both, args=[*args, "1"])
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed_redis(exc)
            return None
        self._recovered()
        return int(wait), int(failures)

    def _keys(self, tenant_id: str, account: Account, ip: str) -> tuple[str, str | None]:
        return self.account_key(tenant_id, account), self.ip_key(ip)

    async def check(self, tenant_id: str, account: Account, ip: str) -> bool:
        """True when this login attempt may go ahead (neither the account nor the IP is locked)."""
        keys = self._keys(tenant_id, account, ip)
        found = await self._run(False, keys)
        allowed = found is None or found[0] == 0
        _refused.set(None if allowed else keys)
        _clean.set(keys[0] if found is not None and found[1] == 0 else None)
        return allowed

    async def failed(self, tenant_id: str, account: Account, ip: str) -> None:
        """Count a failed attempt, unless this request's ``check`` refused it (no password was tested)."""
        keys = self._keys(tenant_id, account, ip)
        if _refused.get() == keys:
            _refused.set(None)
            return
        _clean.set(None)
        await self._run(True, keys)

    async def succeeded(self, tenant_id: str, account: Account) -> None:
        """Clear the account's failures (none to clear when this request's ``check`` found none)."""
        key = self.account_key(tenant_id, account)
        if _clean.get() == key:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.delete(key)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed_redis(exc)  # the failures age out of the window by themselves
            return
        self._recovered()

    def _failed_redis(self, exc: BaseException) -> None:
        self.errors += 1
        if self._errors is not None:
            self._errors.inc()
        if not self._unavailable:
            self._unavailable = True
            log.warning(
                "login throttle unavailable, letting logins through", extra={"error": type(exc).__name__}
            )

    def _recovered(self) -> None:
        if self._unavailable:
            self._unavailable = False
            log.info("login throttle available again")
