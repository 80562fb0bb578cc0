"""The JWKS client when auth cannot be reached: the kept set still verifies, an unknown kid is "cannot
know" (never "invalid"), fetches stay bounded, and a fresh set replaces the old one whole."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from harness.tokens import AUDIENCE, ISSUER, TokenIssuer
from meshkit.auth.keyfile import KeySetFile
from meshkit.auth.keys import JwksClient, KeysUnavailable
from meshkit.auth.tokens import TokenVerifier
from stubs.auth.v1 import auth_pb2


class _Auth:
    """Stands in for the channel to auth: answers the issuer's published keys, or fails like a dead peer."""

    def __init__(self, issuer: TokenIssuer, *, up: bool = True, delay: float = 0.0) -> None:
        self.issuer, self.up, self.delay, self.calls = issuer, up, delay, 0

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        async def call(request: Any, timeout: float | None = None) -> auth_pb2.GetJwksResponse:
            self.calls += 1
            await asyncio.sleep(self.delay)
            if not self.up:
                raise grpc.aio.AioRpcError(
                    grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down"
                )
            return auth_pb2.GetJwksResponse(keys=[auth_pb2.Jwk(**jwk) for jwk in self.issuer.published])

        return call


def _client(auth: _Auth, **options: Any) -> JwksClient:
    return JwksClient(auth, **{"cache_seconds": 300, "refetch_cooldown": 60, **options})  # type: ignore[arg-type]


async def test_auth_unreachable_and_no_kept_set_is_unavailable_not_unknown() -> None:
    issuer = TokenIssuer()
    jwks = _client(_Auth(issuer, up=False), refetch_cooldown=10)
    with pytest.raises(KeysUnavailable) as unavailable:
        await jwks.key(issuer.kid)
    assert 1 <= unavailable.value.retry_after <= 10
    verifier = TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(KeysUnavailable):  # not InvalidToken: the caller must not be signed out
        await verifier.verify(issuer.token("u-1"))


async def test_a_kid_unknown_to_a_fetched_set_stays_unknown() -> None:
    issuer = TokenIssuer()
    assert await _client(_Auth(issuer)).key("forged-kid") is None


async def test_a_restarted_verifier_uses_the_kept_set_while_auth_is_down(tmp_path: Path) -> None:
    issuer = TokenIssuer()
    kept = tmp_path / "jwks" / "gateway.json"
    first = _client(_Auth(issuer), kept=KeySetFile(kept))
    assert await first.key(issuer.kid) is not None  # fetched, and kept on disk

    down = _Auth(issuer, up=False)
    restarted = _client(down, kept=KeySetFile(kept))
    verifier = TokenVerifier(restarted, issuer=ISSUER, audience=AUDIENCE)
    assert (await verifier.verify(issuer.token("u-1"))).sub == "u-1"
    assert down.calls == 1  # it did try auth first
    with pytest.raises(KeysUnavailable):  # a kid the kept set lacks may be a rotation it missed
        await restarted.key("another-kid")


async def test_a_key_auth_removed_is_trusted_no_longer(tmp_path: Path) -> None:
    issuer = TokenIssuer()
    old = issuer.kid
    kept = KeySetFile(tmp_path / "jwks.json")
    jwks = _client(_Auth(issuer), kept=kept, cache_seconds=0, refetch_cooldown=0)
    assert await jwks.key(old) is not None
    issuer.published = [jwk for jwk in issuer.published if jwk["kid"] != old]
    issuer.add_key(publish=True)
    assert await jwks.key(old) is None
    assert old not in kept.path.read_text()


async def test_a_stale_set_is_kept_when_the_refresh_fails() -> None:
    issuer = TokenIssuer()
    auth = _Auth(issuer)
    jwks = _client(auth, cache_seconds=0, refetch_cooldown=0)
    assert await jwks.key(issuer.kid) is not None
    auth.up = False
    assert await jwks.key(issuer.kid) is not None


async def test_fetches_while_auth_is_down_are_single_flight_and_rate_limited() -> None:
    issuer = TokenIssuer()
    auth = _Auth(issuer, up=False, delay=0.05)
    jwks = _client(auth, refetch_cooldown=60)

    async def attempt(kid: str) -> str:
        try:
            await jwks.key(kid)
        except KeysUnavailable:
            return "unavailable"
        return "answered"

    # An attacker's random kids, all at once and then again: one fetch for all of them.
    outcomes = await asyncio.gather(*(attempt(f"random-{n}") for n in range(200)))
    outcomes += await asyncio.gather(*(attempt(f"again-{n}") for n in range(200)))
    assert set(outcomes) == {"unavailable"}
    assert auth.calls == 1


async def test_a_known_kid_does_not_queue_behind_a_slow_refresh() -> None:
    issuer = TokenIssuer()
    auth = _Auth(issuer)
    jwks = _client(auth, cache_seconds=0, refetch_cooldown=0)
    assert await jwks.key(issuer.kid) is not None
    auth.delay = 5  # auth hangs (e.g. stopped): the refresh waits for its deadline
    refresh = asyncio.create_task(jwks.key(issuer.kid))
    await asyncio.sleep(0.05)
    assert await asyncio.wait_for(jwks.key(issuer.kid), timeout=1) is not None
    refresh.cancel()


async def test_a_cancelled_fetch_leaves_unknown_kids_unavailable_not_invalid() -> None:
    issuer = TokenIssuer()
    auth = _Auth(issuer, delay=5)  # auth hangs, and the first caller gives up (client gone)
    jwks = _client(auth, refetch_cooldown=60)
    first = asyncio.create_task(jwks.key(issuer.kid))
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(KeysUnavailable):  # within the cool-down: no fetch, and no 401 either
        await jwks.key(issuer.kid)
    assert auth.calls == 1
