"""The verified-token cache every verifier uses (the gateway's and each backend's): a token seen again is not
verified again until it expires, the cache is bounded, and a key auth removed stops its cached tokens too."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from harness.tokens import AUDIENCE, ISSUER, TokenIssuer
from meshkit.auth.keyfile import KeySetFile
from meshkit.auth.token_cache import VerifiedTokenCache
from meshkit.auth.tokens import InvalidToken, Principal, TokenVerifier
from tests.unit.meshkit.auth.test_keys import _Auth, _client


def _principal(sub: str, expires_in: float) -> Principal:
    now = time.time()
    return Principal(sub, "t", "", frozenset({"user"}), f"jti-{sub}", now, now + expires_in, f"tok-{sub}")


def test_hits_until_expiry_and_evicts_the_oldest() -> None:
    cache = VerifiedTokenCache(size=2)
    cache.put("a", "k", _principal("a", 60))
    cache.put("b", "k", _principal("b", -1))  # already expired
    assert cache.get("a") is not None
    assert cache.get("b") is None
    cache.put("c", "k", _principal("c", 60))
    cache.put("d", "k", _principal("d", 60))  # size 2: "a" is the least recently used and goes
    assert cache.get("a") is None
    assert cache.get("c") is not None
    assert cache.get("d") is not None
    assert len(cache) == 2


class _CountingDecode:
    """Counts the full verifications (PyJWT's signature check) a verifier runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = jwt.decode

        def decode(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(jwt, "decode", decode)


async def test_a_token_seen_again_is_not_verified_again(monkeypatch: pytest.MonkeyPatch) -> None:
    issuer = TokenIssuer()
    verifier = TokenVerifier(
        _client(_Auth(issuer)), issuer=ISSUER, audience=AUDIENCE, cache=VerifiedTokenCache()
    )
    decodes = _CountingDecode(monkeypatch)
    token, other = issuer.token("u-1"), issuer.token("u-2")
    first = await verifier.verify(token)
    assert await verifier.verify(token) == first
    assert decodes.calls == 1
    assert (await verifier.verify(other)).sub == "u-2"  # another token is a miss
    assert decodes.calls == 2


async def test_an_invalid_token_is_never_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    issuer = TokenIssuer()
    verifier = TokenVerifier(
        _client(_Auth(issuer)), issuer=ISSUER, audience=AUDIENCE, cache=VerifiedTokenCache()
    )
    decodes = _CountingDecode(monkeypatch)
    expired = issuer.token("u-1", exp=int(time.time()) - 600)
    for _ in range(2):
        with pytest.raises(InvalidToken):
            await verifier.verify(expired)
    assert decodes.calls == 2


async def test_a_cached_token_expires_with_its_token() -> None:
    issuer = TokenIssuer()
    cache = VerifiedTokenCache()
    verifier = TokenVerifier(_client(_Auth(issuer)), issuer=ISSUER, audience=AUDIENCE, leeway=0, cache=cache)
    token = issuer.token("u-1", exp=int(time.time()) + 1)
    await verifier.verify(token)
    assert len(cache) == 1
    await asyncio.sleep(1.1)  # not a timed assertion: the token's own exp passes
    with pytest.raises(InvalidToken):
        await verifier.verify(token)
    assert len(cache) == 0


async def test_a_key_auth_removed_stops_its_cached_tokens(tmp_path: Path) -> None:
    issuer = TokenIssuer()
    old = issuer.kid
    kept = KeySetFile(tmp_path / "jwks.json")
    jwks = _client(_Auth(issuer), kept=kept, cache_seconds=0, refetch_cooldown=0)
    verifier = TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE, cache=VerifiedTokenCache())
    token = issuer.token("u-1")
    assert (await verifier.verify(token)).sub == "u-1"
    issuer.published = [jwk for jwk in issuer.published if jwk["kid"] != old]
    issuer.add_key(publish=True)
    with pytest.raises(InvalidToken):
        await verifier.verify(token)
