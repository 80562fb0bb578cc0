"""The edge's verified-token cache: hits until the token expires, bounded size."""

from __future__ import annotations

import time

from gateway.edge_auth import VerifiedTokenCache
from meshkit.auth.tokens import Principal


def _principal(sub: str, expires_in: float) -> Principal:
    now = time.time()
    return Principal(sub, "t", "", frozenset({"user"}), f"jti-{sub}", now, now + expires_in, f"tok-{sub}")


def test_hits_until_expiry_and_evicts_the_oldest() -> None:
    cache = VerifiedTokenCache(size=2)
    cache.put("a", _principal("a", 60))
    cache.put("b", _principal("b", -1))  # already expired
    assert cache.get("a") is not None
    assert cache.get("b") is None
    cache.put("c", _principal("c", 60))
    cache.put("d", _principal("d", 60))  # size 2: "a" is the least recently used and goes
    assert cache.get("a") is None
    assert cache.get("c") is not None
    assert cache.get("d") is not None
