"""The revocations of the last access-token lifetime, held in each verifier's memory.

Filled from the revocation stream (:mod:`meshkit.auth.revocation_feed`) and consulted before Redis, so a
verifier still refuses a revoked token while Redis is away or after Redis lost its memory. An entry is
forgotten once no token it names can still be valid (its ``expires_at``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from meshkit.auth.tokens import Principal
from stubs.events.v1 import events_pb2

JTI, SID, USER = "jti", "sid", "user"
KINDS = (JTI, SID, USER)


@dataclass
class RevocationSet:
    """Revoked jtis, ended sessions and per-user "valid after" times, each with its expiry (epoch s)."""

    jtis: dict[str, float] = field(default_factory=dict)
    sids: dict[str, float] = field(default_factory=dict)
    users: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)  # -> (valid_after, exp)
    # True once every revocation published before this process started has been read: only then may the
    # set decide alone while Redis is away.
    ready: bool = False
    _next_prune: float = 0.0

    def __len__(self) -> int:
        return len(self.jtis) + len(self.sids) + len(self.users)

    def add(
        self, kind: str, key: str, expires_at: float, *, tenant_id: str = "", valid_after: float = 0.0
    ) -> None:
        now = time.time()
        if expires_at <= now:
            return
        if kind == JTI:
            self.jtis[key] = max(expires_at, self.jtis.get(key, 0.0))
        elif kind == SID:
            self.sids[key] = max(expires_at, self.sids.get(key, 0.0))
        elif kind == USER:
            old_after, old_exp = self.users.get((tenant_id, key), (0.0, 0.0))
            self.users[(tenant_id, key)] = (max(valid_after, old_after), max(expires_at, old_exp))
        else:
            raise ValueError(f"unknown revocation kind {kind!r}")
        if now >= self._next_prune:
            self.prune(now)

    def apply(self, revocation: events_pb2.Revocation) -> None:
        """Add one revocation as published by the auth backend."""
        self.add(
            revocation.kind,
            revocation.key,
            revocation.expires_at.ToMicroseconds() / 1e6,
            tenant_id=revocation.tenant_id,
            valid_after=revocation.valid_after.ToMicroseconds() / 1e6,
        )

    async def wait_for_jti(self, jti: str, timeout: float) -> bool:
        """Whether the revocation of ``jti`` arrived within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while jti not in self.jtis:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def prune(self, now: float | None = None) -> None:
        """Forget what has expired (called now and then by :meth:`add`)."""
        now = time.time() if now is None else now
        self.jtis = {k: exp for k, exp in self.jtis.items() if exp > now}
        self.sids = {k: exp for k, exp in self.sids.items() if exp > now}
        self.users = {k: v for k, v in self.users.items() if v[1] > now}
        self._next_prune = now + 60

    def is_revoked(self, principal: Principal) -> bool:
        now = time.time()
        if self.jtis.get(principal.jti, 0.0) > now:
            return True
        if principal.session_id and self.sids.get(principal.session_id, 0.0) > now:
            return True
        after, exp = self.users.get((principal.tenant_id, principal.sub), (0.0, 0.0))
        return exp > now and principal.issued_at <= after
