"""The auth backend's public keys, fetched over gRPC (``auth.v1.AuthService/GetJwks``) and cached.

An unknown ``kid`` triggers one refetch (a key rotation we have not seen yet), at most once per
cool-down so a flood of forged ``kid`` values cannot turn into a flood of fetches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format
from jwt import PyJWK

from stubs.auth.v1 import auth_pb2, auth_pb2_grpc

log = logging.getLogger(__name__)

# Only asymmetric algorithms Portico signs with; anything else in a JWKS is ignored.
ALLOWED_ALGORITHMS = frozenset({"EdDSA", "ES256"})


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    algorithm: str
    key: Any  # a cryptography public key object


def parse_jwks(response: auth_pb2.GetJwksResponse) -> dict[str, VerificationKey]:
    keys: dict[str, VerificationKey] = {}
    for jwk in response.keys:
        if jwk.alg not in ALLOWED_ALGORITHMS or not jwk.kid or (jwk.use and jwk.use != "sig"):
            continue
        as_dict = json_format.MessageToDict(jwk, preserving_proto_field_name=True)
        try:
            keys[jwk.kid] = VerificationKey(jwk.kid, jwk.alg, PyJWK.from_dict(as_dict, algorithm=jwk.alg).key)
        except Exception:  # a malformed key is skipped, the others still work
            log.warning("skipping unusable JWK", extra={"kid": jwk.kid})
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
    ) -> None:
        self._stub = auth_pb2_grpc.AuthServiceStub(channel)
        self._cache_seconds = cache_seconds
        self._cooldown = refetch_cooldown
        self._timeout = timeout
        self._keys: dict[str, VerificationKey] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _fetch(self) -> None:
        response = await self._stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=self._timeout)
        self._keys = parse_jwks(response)
        self._fetched_at = time.monotonic()

    async def key(self, kid: str) -> VerificationKey | None:
        """The key named ``kid``, fetching when the cache is stale or the kid is new (rate-limited)."""
        now = time.monotonic()
        stale = now - self._fetched_at > self._cache_seconds
        if kid in self._keys and not stale:
            return self._keys[kid]
        if stale or now - self._fetched_at > self._cooldown:
            async with self._lock:
                # Another caller may have refreshed while we waited for the lock.
                if time.monotonic() - self._fetched_at > min(self._cooldown, self._cache_seconds):
                    try:
                        await self._fetch()
                    except grpc.aio.AioRpcError as exc:
                        # Keep serving with the keys we have; a later call retries.
                        log.warning("JWKS fetch failed", extra={"code": exc.code().name})
                        self._fetched_at = time.monotonic() - self._cache_seconds + self._cooldown
        return self._keys.get(kid)
