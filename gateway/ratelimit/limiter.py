"""Several limits decided together: all allow (and all are charged) or the request is refused and none is.

:class:`RedisLimiter` does it in one Lua script with Redis's clock; :class:`LocalLimiter` is the same
arithmetic in process memory, used while Redis is unreachable (each gateway instance then limits alone,
which is why it only takes over on failure and the fallback is counted).

On a Redis Cluster a script may only touch keys of one slot. The keys are hash-tagged
(:mod:`gateway.ratelimit.edge`) so that a request's limits fall in at most two slots — its client IP's,
and its tenant's (with the token's revocation marks) — and the script runs once per slot, the calls sent
together. "All or none" then holds within a slot: a request refused by its user's limit may still have
been charged to its IP (stricter, never looser), and a revoked token's refusal decides only the limits
in the marks' slot, as on one server. On one server nothing changes: one script, one round trip.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter
from redis.crc import key_slot
from redis.exceptions import RedisError

from gateway.metrics import Children
from gateway.ratelimit.limits import Decision, Limit, gcra
from meshkit.redis_client import RedisClient, is_cluster

log = logging.getLogger(__name__)

# KEYS: first ARGV[1] revocation marks (0, or the 3 of meshkit.auth.revocation.revocation_keys), then one
# per limit. ARGV: the mark count, the token's iat, 1 when it names a session, how many leading limits a
# revoked token is charged instead of all (the refusal's); then per limit: interval, period.
# Returns: now, how many leading limits were decided (and, when allowed, charged), the marks, then one TAT
# per decided limit — the caller recomputes the numbers from them. Now is taken from Redis.
# A revoked token is a refusal: it is charged what any refused request is (the client IP), never as an
# allowed request of its user. The caller decides the 401 itself from the returned marks.
_SCRIPT = """
local nmarks = tonumber(ARGV[1])
local nlimits = #KEYS - nmarks
local marks = {}
if nmarks > 0 then
  marks = redis.call('MGET', unpack(KEYS, 1, nmarks))
  local after = marks[2] and (tonumber(marks[2]) or math.huge)
  if marks[1] or (ARGV[3] == '1' and marks[3]) or (after and tonumber(ARGV[2]) <= after) then
    nlimits = tonumber(ARGV[4])
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tats, news, ok = {}, {}, true
for i = 1, nlimits do
  local interval = tonumber(ARGV[3 + 2 * i])
  local period = tonumber(ARGV[4 + 2 * i])
  local tat = tonumber(redis.call('GET', KEYS[nmarks + i]) or '0')
  tats[i] = tat
  local start = math.max(tat, now)
  news[i] = start + interval
  if news[i] - now > period + 1e-9 then ok = false end
end
if ok then
  for i = 1, nlimits do
    local period = tonumber(ARGV[4 + 2 * i])
    redis.call('SET', KEYS[nmarks + i], string.format('%.6f', news[i]), 'PX', math.ceil(period * 1000) + 1000)
  end
end
local out = {string.format('%.6f', now), nlimits}
for i = 1, nmarks do out[#out + 1] = marks[i] end
for i = 1, nlimits do out[#out + 1] = string.format('%.6f', tats[i]) end
return out
"""

Keyed = Sequence[tuple[Limit, str]]  # (limit, key such as "ip:203.0.113.9")


@dataclass(frozen=True)
class MarksToRead:
    """A token's revocation marks for the limit script to read, and what Lua needs to see them revoke."""

    keys: Sequence[str]  # meshkit.auth.revocation.revocation_keys: jti, valid-after, session
    issued_at: float
    has_session: bool
    refusal: int  # a revoked token is charged only this many leading limits (the refusal's)


@dataclass(frozen=True)
class Checked:
    decisions: list[Decision] | None  # None: RedisClient failed and limiting fails closed
    marks: list[bytes | None] | None  # as read by the script; None when not asked or Redis failed
    failed: bool  # Redis failed: the local limiter decided (or nobody did)


def _revokes(marks: MarksToRead, read: Sequence[bytes | None]) -> bool:
    """What the script decides from the marks it read (its Lua, in Python)."""
    revoked, valid_after, session_ended = read
    if revoked is not None or (marks.has_session and session_ended is not None):
        return True
    if valid_after is None:
        return False
    try:
        return marks.issued_at <= float(valid_after)
    except ValueError:
        return True  # Lua: a mark that is not a number revokes every token (math.huge)


def _decide(limits: Keyed, tats: Sequence[float], now: float) -> list[Decision]:
    return [gcra(limit, tat, now)[0] for (limit, _), tat in zip(limits, tats, strict=True)]


class LocalLimiter:
    """GCRA in process memory, bounded to ``max_keys`` keys whatever the number of clients.

    Keys are kept in the order they were last asked about. Past the bound, keys whose TAT has passed
    go first (such an entry means "full allowance", the same as no entry); if that is not enough, the
    least recently asked-about go, down to a low-water mark so that the sweep runs once per many new
    keys, not on every request. A client being refused keeps asking, so it stays near the end and
    keeps its state: a flood of new addresses cannot reset the limits of the clients being limited.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self._tats: dict[str, float] = {}
        self._max_keys = max_keys

    def __len__(self) -> int:
        return len(self._tats)

    def check(self, limits: Keyed) -> list[Decision]:
        now = time.time()
        tats = [self._tats.pop(key, 0.0) for _, key in limits]  # popped: re-inserted last below
        results = [gcra(limit, tat, now) for (limit, _), tat in zip(limits, tats, strict=True)]
        charge = all(decision.allowed for decision, _ in results)
        for (_, key), tat, (_, new_tat) in zip(limits, tats, results, strict=True):
            stored = new_tat if charge else tat
            if stored > now:  # a TAT in the past is the same as no entry
                self._tats[key] = stored
        if len(self._tats) > self._max_keys:
            self._evict(now)
        return [decision for decision, _ in results]

    def _evict(self, now: float) -> None:
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        excess = len(self._tats) - self._max_keys * 9 // 10
        if excess > 0:  # still full of live entries: forget the least recently asked-about
            for key in list(itertools.islice(self._tats, excess)):
                del self._tats[key]


class RedisLimiter:
    def __init__(
        self, redis: RedisClient, registry: CollectorRegistry, *, fail_open: bool, prefix: str = "portico:rl:"
    ) -> None:
        self._redis = redis
        self._cluster = is_cluster(redis)
        self._script = redis.register_script(_SCRIPT)
        self._local = LocalLimiter()
        self._fail_open = fail_open
        self._prefix = prefix
        self.decisions = Counter(
            "portico_gateway_rate_limit_decisions_total",
            "Rate-limit decisions by limit and outcome.",
            ["limit", "outcome"],
            registry=registry,
        )
        self._decided = Children(self.decisions)
        self.fallbacks = Counter(
            "portico_gateway_rate_limit_fallbacks_total",
            "Decisions made by the in-process limiter because Redis was unreachable.",
            registry=registry,
        )

    async def check(self, limits: Keyed) -> list[Decision] | None:
        """The decisions; None when Redis failed and fail-open is off (the caller answers 503)."""
        return (await self.check_with_marks(limits, None)).decisions

    async def check_with_marks(self, limits: Keyed, marks: MarksToRead | None) -> Checked:
        """The limits and, in the same round trip, the revocation marks of a token (one Redis call per
        request). When Lua finds the token revoked, only ``marks.refusal`` leading limits are decided."""
        if not limits:
            return Checked([], None, failed=False)
        try:
            groups = self._by_slot(limits, marks) if self._cluster else [(list(range(len(limits))), marks)]
            if len(groups) == 1:
                decisions, read = await self._run(limits, marks)
            else:
                decisions, read = await self._run_by_slot(limits, marks, groups)
        except RedisError as exc:
            self.fallbacks.inc()
            log.warning("rate limiter falling back to the local one", extra={"error": type(exc).__name__})
            # With marks, which limits to charge depends on the revocation answer: the caller decides.
            return Checked(None if marks else self.local_check(limits), None, failed=True)
        self.count(decisions)
        return Checked(decisions, read, failed=False)

    async def _run(
        self, limits: Keyed, marks: MarksToRead | None
    ) -> tuple[list[Decision], list[bytes | None] | None]:
        """One script call: the decisions of the leading limits it decided, and the marks it read."""
        keys = [*marks.keys] if marks else []
        args: list[float | str] = (
            [len(keys), repr(marks.issued_at), 1 if marks.has_session else 0, marks.refusal]
            if marks
            else [0, 0, 0, 0]
        )
        for limit, _ in limits:
            args += [limit.interval, limit.period]
        raw = await self._script(keys=keys + [self._prefix + key for _, key in limits], args=args)
        now, decided = float(raw[0]), int(raw[1])
        read = list(raw[2 : 2 + len(keys)]) if marks else None
        return _decide(limits[:decided], [float(v) for v in raw[2 + len(keys) :]], now), read

    def _by_slot(
        self, limits: Keyed, marks: MarksToRead | None
    ) -> list[tuple[list[int], MarksToRead | None]]:
        """The limits' indices by cluster slot, in order; the marks (one slot: one tag) go with theirs,
        their refusal counted among that slot's limits."""
        slots: dict[int, list[int]] = {}
        if marks:
            slots[key_slot(marks.keys[0].encode())] = []
        for i, (_, key) in enumerate(limits):
            slots.setdefault(key_slot((self._prefix + key).encode()), []).append(i)
        groups: list[tuple[list[int], MarksToRead | None]] = []
        for n, indices in enumerate(slots.values()):
            if marks and n == 0:  # the marks' slot is the first one made
                refusal = sum(1 for i in indices if i < marks.refusal)
                groups.append((indices, MarksToRead(marks.keys, marks.issued_at, marks.has_session, refusal)))
            else:
                groups.append((indices, None))
        return groups

    async def _run_by_slot(
        self, limits: Keyed, marks: MarksToRead | None, groups: list[tuple[list[int], MarksToRead | None]]
    ) -> tuple[list[Decision], list[bytes | None] | None]:
        """One script call per slot, sent together; the decisions put back in the limits' order (only
        the refusal's leading ones when the marks revoke the token)."""
        answers = await asyncio.gather(
            *(self._run([limits[i] for i in indices], group_marks) for indices, group_marks in groups)
        )
        by_index: dict[int, Decision] = {}
        read: list[bytes | None] | None = None
        for (indices, group_marks), (decisions, group_read) in zip(groups, answers, strict=True):
            by_index.update(zip(indices, decisions, strict=False))
            if group_marks is not None:
                read = group_read
        decided = marks.refusal if marks and read is not None and _revokes(marks, read) else len(limits)
        return [by_index[i] for i in range(decided)], read

    def local_check(self, limits: Keyed) -> list[Decision] | None:
        """After a failed :meth:`check_with_marks`: the local limiter decides another set (or None when
        failing closed). The failure was counted already."""
        decisions = self._local.check(limits) if self._fail_open else None
        if decisions is not None:
            self.count(decisions)
        return decisions

    def count(self, decisions: Sequence[Decision]) -> None:
        for decision in decisions:
            self._decided(decision.limit.name, "allowed" if decision.allowed else "refused").inc()
