"""Redis read-through cache of users for GetUser/GetMe.

- Keys are tenant-prefixed and hash-tagged (``portico:users:v1:{<tenant>:<id>}``) so the entry and its
  generation counter live in the same Redis Cluster slot.
- Invalidation bumps a generation counter and deletes the entry; a fill only writes if the generation is
  still the one it saw before reading the database, so a slow reader can never put back a stale user.
- Stampedes: concurrent misses in one process share one load (single flight); across processes a short
  fill lock lets one process load while the others wait briefly for its result.
- Unknown ids are cached as "absent" for a short time, so a flood of bad ids does not reach the database.
- When Redis fails, the cache steps aside: reads go to the database and the bypass is counted.
- A call whose entry and generation were read ahead with its token's revocation marks
  (:mod:`meshkit.auth.prefetch`, declared by the service for GetUser/GetMe) uses those values: a warm
  read is then the call's only Redis round trip.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError

from meshkit.auth import prefetch
from meshkit.redis_client import RedisClient
from stubs.users.v1 import users_pb2

log = logging.getLogger(__name__)

_ABSENT = b"-"
_PRESENT = b"u"
# KEYS: entry, generation. ARGV: generation seen before the load ("" = none), value, ttl in ms.
_FILL_IF_CURRENT = """
local gen = redis.call('GET', KEYS[2]) or ''
if gen == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""

Loader = Callable[[], Awaitable[users_pb2.User | None]]


class UserCache:
    def __init__(
        self,
        redis: RedisClient,
        registry: CollectorRegistry,
        *,
        ttl_seconds: float = 300.0,
        absent_ttl_seconds: float = 30.0,
        lock_seconds: float = 2.0,
        wait_for_peer_seconds: float = 0.5,
    ) -> None:
        self._redis = redis
        self._ttl_ms = int(ttl_seconds * 1000)
        self._absent_ttl_ms = int(absent_ttl_seconds * 1000)
        self._lock_ms = int(lock_seconds * 1000)
        self._wait_for_peer = wait_for_peer_seconds
        self._fill = redis.register_script(_FILL_IF_CURRENT)
        self._inflight: dict[str, asyncio.Future[users_pb2.User | None]] = {}
        requests = Counter(
            "portico_cache_requests_total",
            "User cache lookups by result: hit, miss (loaded from the database) or bypass (Redis failed).",
            ["cache", "result"],
            registry=registry,
        )
        # Resolved once: a label lookup per call is a lock and a dictionary for nothing.
        self._hits = requests.labels("users", "hit")
        self._misses = requests.labels("users", "miss")
        self._bypasses = requests.labels("users", "bypass")
        self._invalidation_errors = Counter(
            "portico_cache_invalidation_errors_total",
            "Invalidations that could not reach Redis (entries then expire by TTL).",
            ["cache"],
            registry=registry,
        )

    @staticmethod
    def key(tenant_id: str, user_id: str) -> str:
        return f"portico:users:v1:{{{tenant_id}:{user_id}}}"

    @classmethod
    def read_keys(cls, tenant_id: str, user_id: str) -> tuple[str, str]:
        """What a read asks Redis first: the entry and its generation (what a call may prefetch)."""
        key = cls.key(tenant_id, user_id)
        return key, f"{key}:gen"

    async def get(self, tenant_id: str, user_id: str, load: Loader) -> users_pb2.User | None:
        """The cached user, or ``load()``'s answer (stored for the next caller)."""
        key = self.key(tenant_id, user_id)
        ahead = prefetch.take(*self.read_keys(tenant_id, user_id))
        if ahead is not None and ahead[0] is not None:
            self._hits.inc()
            return _decode(_as_bytes(ahead[0]))
        shared = self._inflight.get(key)
        if shared is not None:
            return await asyncio.shield(shared)
        future: asyncio.Future[users_pb2.User | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._get(key, load, ahead)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: the waiters (if any) re-raise it themselves
            raise
        finally:
            if self._inflight.get(key) is future:  # invalidate() may have dropped it already
                del self._inflight[key]

    async def _get(
        self, key: str, load: Loader, ahead: list[prefetch.Value] | None = None
    ) -> users_pb2.User | None:
        """``ahead``: the entry (absent) and generation this call read with its revocation marks."""
        gen_key = f"{key}:gen"
        try:
            if ahead is None:
                cached, generation = await self._redis.mget(key, gen_key)  # bytes: decode_responses is off
            else:
                cached, generation = ahead  # read before any load: a valid guard for the fill
            if cached is not None:
                self._hits.inc()
                return _decode(_as_bytes(cached))
            if not await self._redis.set(f"{key}:lock", "1", nx=True, px=self._lock_ms):
                cached = await self._wait_for_peer_fill(key)
                if cached is not None:
                    self._hits.inc()
                    return _decode(cached)
        except RedisError as exc:
            self._bypasses.inc()
            log.warning("user cache unavailable, reading the database", extra={"error": type(exc).__name__})
            return await load()

        self._misses.inc()
        user = await load()
        value, ttl = (
            (_PRESENT + user.SerializeToString(), self._ttl_ms) if user else (_ABSENT, self._absent_ttl_ms)
        )
        try:
            await self._fill(keys=[key, gen_key], args=[generation or b"", value, ttl])
            await self._redis.delete(f"{key}:lock")
        except RedisError:
            pass  # the value is correct; it simply is not cached this time
        return user

    async def _wait_for_peer_fill(self, key: str) -> bytes | None:
        """Another process holds the fill lock: poll briefly for its result, then load ourselves."""
        deadline = asyncio.get_running_loop().time() + self._wait_for_peer
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
            value = await self._redis.get(key)
            if value is not None:
                return _as_bytes(value)
        return None

    async def invalidate(self, tenant_id: str, user_id: str) -> None:
        """Forget a user after a change committed; fills that started earlier will not write back, and a
        load already running in this process (it may have read the row before the commit) is shared with
        no caller that comes after."""
        key = self.key(tenant_id, user_id)
        self._inflight.pop(key, None)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(f"{key}:gen")
                pipe.pexpire(f"{key}:gen", self._ttl_ms * 2)
                pipe.delete(key)
                await pipe.execute()
        except RedisError as exc:
            self._invalidation_errors.labels("users").inc()
            log.error("user cache invalidation failed", extra={"key": key, "error": type(exc).__name__})


def _decode(value: bytes) -> users_pb2.User | None:
    if value.startswith(_PRESENT):
        return users_pb2.User.FromString(value[1:])
    return None


def _as_bytes(value: bytes | str) -> bytes:
    # The client is built without decode_responses, so Redis answers bytes; the typing allows str.
    return value if isinstance(value, bytes) else value.encode()
