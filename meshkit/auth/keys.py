"""The auth backend's public keys, fetched over gRPC (``auth.v1.AuthService/GetJwks``) and cached.

An unknown ``kid`` triggers one refetch (a key rotation we have not seen yet). Fetches are single-flight
and at most one per cool-down, so a flood of forged ``kid`` values cannot turn into a flood of fetches.

"Unknown" and "cannot know" differ: a ``kid`` missing from a key set fetched just now is unknown (the
token is invalid), but when the fetch failed and the ``kid`` is not in the set kept from before, the
token may well be valid, so :class:`KeysUnavailable` is raised (a 503 / UNAVAILABLE, never a 401).
The last fetched set is kept (in memory, and in a :class:`~meshkit.auth.keyfile.KeySetFile` when given)
and used while auth is unreachable; a successful fetch replaces it whole, so a key auth removed is
trusted no longer.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format
from jwt import PyJWK
from prometheus_client import Counter

from meshkit.auth.keyfile import KeySetFile
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc

log = logging.getLogger(__name__)

# Only asymmetric algorithms Portico signs with; anything else in a JWKS is ignored.
ALLOWED_ALGORITHMS = frozenset({"EdDSA", "ES256"})


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    algorithm: str
    key: Any  # a cryptography public key object


class KeysUnavailable(Exception):
    """The key set cannot be fetched and the token's ``kid`` is not in the one kept: validity unknown."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("the token-signing keys are unavailable")
        self.retry_after = retry_after  # seconds until the next fetch may be tried


def parse_jwks(response: auth_pb2.GetJwksResponse) -> dict[str, VerificationKey]:
    return parse_jwk_dicts(jwk_dicts(response))


def jwk_dicts(response: auth_pb2.GetJwksResponse) -> list[dict[str, str]]:
    return [json_format.MessageToDict(jwk, preserving_proto_field_name=True) for jwk in response.keys]


def parse_jwk_dicts(jwks: list[dict[str, str]]) -> dict[str, VerificationKey]:
    keys: dict[str, VerificationKey] = {}
    for jwk in jwks:
        kid, alg = jwk.get("kid", ""), jwk.get("alg", "")
        if alg not in ALLOWED_ALGORITHMS or not kid or (jwk.get("use") or "sig") != "sig":
            continue
        try:
            keys[kid] = VerificationKey(kid, alg, PyJWK.from_dict(jwk, algorithm=alg).key)
        except Exception:  # a malformed key is skipped, the others still work
            log.warning("skipping unusable JWK", extra={"kid": kid})
    return keys


class JwksClient:
    """Cached key set of the auth backend."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        cache_seconds: float = 300.0,
        refetch_cooldown: float = 10.0,
        timeout: float = 3.0,
        kept: KeySetFile | None = None,
        failures: Counter | None = None,
    ) -> None:
        self._stub = auth_pb2_grpc.AuthServiceStub(channel)
        self._cache_seconds = cache_seconds
        self._cooldown = refetch_cooldown
        self._timeout = timeout
        self._kept = kept
        self._failures = failures
        # Loaded before the first fetch, but stale: the first token checked triggers a fetch.
        self._keys = parse_jwk_dicts(kept.load()) if kept is not None else {}
        self._fetched_at = float("-inf")  # last successful fetch (monotonic)
        self._attempted_at = float("-inf")  # last fetch started, whatever its outcome
        self._lock = asyncio.Lock()

    async def _fetch(self) -> None:
        response = await self._stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=self._timeout)
        jwks = jwk_dicts(response)
        self._keys = parse_jwk_dicts(jwks)
        self._fetched_at = time.monotonic()
        if self._kept is not None:
            self._kept.save(jwks)

    def _interval(self, now: float) -> float:
        """Minimum seconds between two fetches: the cool-down, or less when the cache time is shorter."""
        stale = now - self._fetched_at > self._cache_seconds
        return min(self._cooldown, self._cache_seconds) if stale else self._cooldown

    async def _refresh(self) -> None:
        """Fetch unless another caller did within the minimum interval (single flight: one at a time)."""
        async with self._lock:
            now = time.monotonic()
            if now - self._attempted_at < self._interval(now):
                return  # fetched (or tried) while we waited for the lock
            self._attempted_at = now
            try:
                await self._fetch()
            except grpc.aio.AioRpcError as exc:
                # Keep serving with the keys we have; a later call retries after the cool-down.
                if self._failures is not None:
                    self._failures.inc()
                log.warning("JWKS fetch failed", extra={"code": exc.code().name})

    def retry_after(self) -> int:
        """Whole seconds until a fetch may be tried again (at least 1)."""
        wait = self._cooldown - (time.monotonic() - self._attempted_at)
        return max(1, math.ceil(wait))

    async def key(self, kid: str) -> VerificationKey | None:
        """The key named ``kid``; None when a fetched key set does not have it.

        Fetches when the cache is stale or the kid is new (rate-limited). Raises :class:`KeysUnavailable`
        when the kid is not in the kept set and the last fetch failed.
        """
        now = time.monotonic()
        stale = now - self._fetched_at > self._cache_seconds
        if kid in self._keys and (not stale or self._lock.locked()):
            # Fresh, or stale while another caller is refreshing: no need to queue behind a slow auth.
            return self._keys[kid]
        # A fetch in flight is waited for: until it ends, "unknown" and "cannot know" are not told apart.
        if self._lock.locked() or now - self._attempted_at >= self._interval(now):
            await self._refresh()
        if kid in self._keys:
            return self._keys[kid]  # possibly stale: the last set we know beats no answer
        if self._fetched_at >= self._attempted_at:
            return None  # the latest fetch succeeded and lacks it: unknown
        # The latest fetch failed (or was cancelled): the kid may be a key we could not fetch.
        raise KeysUnavailable(self.retry_after())
