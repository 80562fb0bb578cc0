"""Key rotation end to end on a controlled clock: what is published, what signs, and that every token
keeps verifying (through the kit's TokenVerifier, fed over gRPC by a JWKS server reading the ring) until
it expires, across a rotation made by another KeyRing instance as the CLI would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import grpc
import jwt
import pytest

from backends.auth.access_tokens import IssuedToken, issue_access_token
from backends.auth.keys import DEFAULT_PUBLISH_AHEAD, KeyRing, SigningKey, default_keep_after, rotate
from meshkit.auth.keys import JwksClient
from meshkit.auth.tokens import InvalidToken, TokenVerifier
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc

ISSUER, AUDIENCE = "portico-auth", "portico"
T0 = datetime(2030, 1, 1, tzinfo=UTC)
TTL = timedelta(seconds=600)
LEEWAY = 30.0  # the verifiers' default
PUBLISH_AHEAD = DEFAULT_PUBLISH_AHEAD  # 360 s
KEEP_AFTER = default_keep_after(TTL)  # 660 s


@dataclass
class Clock:
    now: datetime

    def at(self, moment: datetime) -> datetime:
        self.now = moment
        return moment


class _JwtClock(datetime):
    """PyJWT reads ``datetime.now`` to check iat/nbf/exp; tests point it at their clock."""

    clock: ClassVar[Clock]

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return cls.clock.now.astimezone(tz)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(T0)
    _JwtClock.clock = clock
    # raising=True (the default): if PyJWT stops importing datetime this way, the test fails loudly.
    monkeypatch.setattr(jwt.api_jwt, "datetime", _JwtClock)
    return clock


class _Jwks(auth_pb2_grpc.AuthServiceServicer):
    """GetJwks as the auth backend serves it: reload when the directory changed, publish at ``now``."""

    def __init__(self, ring: KeyRing, clock: Clock) -> None:
        self.ring, self.clock, self.calls = ring, clock, 0

    def GetJwks(self, request: auth_pb2.GetJwksRequest, context: Any) -> auth_pb2.GetJwksResponse:
        self.calls += 1
        self.ring.reload_if_changed()
        return self.ring.jwks(self.clock.now)


@dataclass
class Backend:
    ring: KeyRing  # the auth backend's own instance; rotations happen in other instances
    jwks: _Jwks
    target: str


@pytest.fixture
def backend(tmp_path: Path, clock: Clock) -> Iterator[Backend]:
    ring = KeyRing.load_or_create(tmp_path, None, T0)
    servicer = _Jwks(ring, clock)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield Backend(ring, servicer, f"127.0.0.1:{port}")
    server.stop(grace=None)


@pytest.fixture
async def verify(backend: Backend) -> AsyncIterator[Any]:
    """A verifier that fetches the JWKS on every call, so each check sees what is published at ``now``."""
    async with grpc.aio.insecure_channel(backend.target) as channel:
        verifier = TokenVerifier(
            JwksClient(channel, cache_seconds=0, refetch_cooldown=0),
            issuer=ISSUER,
            audience=AUDIENCE,
            leeway=LEEWAY,
        )

        async def verifies(token: IssuedToken) -> bool:
            try:
                await verifier.verify(token.token)
            except InvalidToken:
                return False
            return True

        yield verifies


def _token(ring: KeyRing, now: datetime) -> IssuedToken:
    ring.reload_if_changed()
    return issue_access_token(
        ring.signing_key(now),
        sub="u-1",
        tenant_id="default",
        email="u@example.test",
        roles=("user",),
        ttl_seconds=int(TTL.total_seconds()),
        issuer=ISSUER,
        audience=AUDIENCE,
        now=now,
    )


def _kids(keys: list[SigningKey]) -> list[str]:
    return [k.kid for k in keys]


def _header_kid(token: IssuedToken) -> str:
    return str(jwt.get_unverified_header(token.token)["kid"])


async def test_rotation_timeline(tmp_path: Path, clock: Clock, backend: Backend, verify: Any) -> None:
    ring = backend.ring
    old_key = ring.signing_key(T0)
    old = old_key.kid
    before = _token(ring, clock.at(T0 + timedelta(hours=1)))
    assert await verify(before)

    rotated_at = clock.at(T0 + timedelta(hours=2))
    new = rotate(tmp_path, None, rotated_at, publish_ahead=PUBLISH_AHEAD, keep_after=KEEP_AFTER)
    signs_from = rotated_at + PUBLISH_AHEAD
    retire_after = signs_from + KEEP_AFTER

    # Published at once, before it signs: every verifier's cache has it when its first token comes.
    clock.at(rotated_at)
    assert _kids(ring.published(rotated_at)) == [old]  # this instance has not looked at the disk yet
    assert ring.reload_if_changed() is True
    assert _kids(ring.published(rotated_at)) == [old, new]  # signer first
    assert [jwk.kid for jwk in ring.jwks(rotated_at).keys] == [old, new]

    # The old key keeps signing until signs_from; its last token is the one that lives longest.
    last_old = _token(ring, clock.at(signs_from - timedelta(seconds=1)))
    assert _header_kid(last_old) == old
    assert await verify(last_old)

    # From signs_from the new key signs; the old one stays published.
    first_new = _token(ring, clock.at(signs_from))
    assert _header_kid(first_new) == new
    assert _kids(ring.published(signs_from)) == [new, old]
    assert await verify(first_new)
    assert await verify(last_old)

    # The old key's last token verifies to the very end of its life (exp plus the verifiers' leeway)…
    clock.at(last_old.expires_at + timedelta(seconds=LEEWAY - 1))
    assert old in _kids(ring.published(clock.now))
    assert await verify(last_old)
    # …and stops because it expired, while its key is still published.
    clock.at(last_old.expires_at + timedelta(seconds=LEEWAY + 1))
    assert clock.now < retire_after
    assert old in [jwk.kid for jwk in ring.jwks(clock.now).keys]
    assert not await verify(last_old)

    # After retire_after the old key leaves the JWKS; the new one alone signs and verifies.
    clock.at(retire_after)
    assert [jwk.kid for jwk in ring.jwks(retire_after).keys] == [new]
    assert ring.signing_key(retire_after).kid == new
    assert await verify(_token(ring, retire_after))
    # A fresh token signed by the old key no longer verifies: verifiers no longer know the key.
    late = issue_access_token(
        old_key,
        sub="u-1",
        tenant_id="default",
        email="",
        roles=("user",),
        ttl_seconds=600,
        issuer=ISSUER,
        audience=AUDIENCE,
        now=retire_after,
    )
    assert not await verify(late)
    assert await verify(before) is False  # long expired anyway


async def test_a_verifier_that_cached_the_jwks_before_the_switch_needs_no_refetch(
    tmp_path: Path, clock: Clock, backend: Backend
) -> None:
    rotated_at = clock.at(T0 + timedelta(hours=1))
    new = rotate(tmp_path, None, rotated_at, publish_ahead=PUBLISH_AHEAD, keep_after=KEEP_AFTER)
    async with grpc.aio.insecure_channel(backend.target) as channel:
        # Production cache time, and no refetch on an unknown kid: only what was fetched counts.
        jwks = JwksClient(channel, cache_seconds=300, refetch_cooldown=3600)
        verifier = TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE, leeway=LEEWAY)
        await verifier.verify(_token(backend.ring, clock.at(rotated_at + timedelta(seconds=1))).token)
        calls = backend.jwks.calls

        first_new = _token(backend.ring, clock.at(rotated_at + PUBLISH_AHEAD))
        assert _header_kid(first_new) == new
        await verifier.verify(first_new.token)
        assert backend.jwks.calls == calls


def test_rotation_prunes_keys_past_retire_after(tmp_path: Path) -> None:
    first = KeyRing.load_or_create(tmp_path, None, T0).signing_key(T0).kid
    second = rotate(tmp_path, None, T0, publish_ahead=PUBLISH_AHEAD, keep_after=KEEP_AFTER)
    retired = T0 + PUBLISH_AHEAD + KEEP_AFTER

    # Until the next rotation a retired key stays listed (and on disk), but is not published.
    ring = KeyRing.load(tmp_path, None)
    assert _kids(ring.published(retired)) == [second]
    assert (tmp_path / f"{first}.pem").exists()

    third = rotate(tmp_path, None, retired, publish_ahead=PUBLISH_AHEAD, keep_after=KEEP_AFTER)
    assert [k.kid for k in KeyRing.load(tmp_path, None).keys] == [second, third]
    assert not (tmp_path / f"{first}.pem").exists()


def test_two_rotations_before_the_first_next_key_signs(tmp_path: Path) -> None:
    first = KeyRing.load_or_create(tmp_path, None, T0).signing_key(T0).kid
    second = rotate(tmp_path, None, T0, publish_ahead=PUBLISH_AHEAD, keep_after=KEEP_AFTER)
    later = T0 + timedelta(seconds=100)
    third = rotate(tmp_path, None, later, publish_ahead=PUBLISH_AHEAD, keep_after=KEEP_AFTER)
    ring = KeyRing.load(tmp_path, None)
    records = {k.kid: k.record for k in ring.keys}

    # The first key keeps its first schedule; the second, superseded before it ever signed, now retires
    # too, after the third starts: no key is left without a retire_after but the newest.
    assert records[first].retire_after == T0 + PUBLISH_AHEAD + KEEP_AFTER
    assert records[second].retire_after == later + PUBLISH_AHEAD + KEEP_AFTER
    assert records[third].retire_after is None
    assert _kids(ring.published(later)) == [first, third, second]
    assert ring.signing_key(T0 + PUBLISH_AHEAD).kid == second
    assert ring.signing_key(later + PUBLISH_AHEAD).kid == third


def test_a_later_key_with_an_earlier_start_wins_over_an_older_one(tmp_path: Path) -> None:
    KeyRing.load_or_create(tmp_path, None, T0)
    slow = rotate(tmp_path, None, T0, publish_ahead=timedelta(hours=1), keep_after=KEEP_AFTER)
    fast = rotate(tmp_path, None, T0, publish_ahead=PUBLISH_AHEAD, keep_after=KEEP_AFTER)
    ring = KeyRing.load(tmp_path, None)
    # The newest key signs once it has started; the older "slow" one never does, and retires on time.
    assert ring.signing_key(T0 + timedelta(hours=2)).kid == fast
    assert {k.kid: k.record.retire_after for k in ring.keys}[slow] == T0 + PUBLISH_AHEAD + KEEP_AFTER


def test_a_replica_whose_clock_is_behind_still_signs(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path, None, T0)
    assert ring.signing_key(T0 - timedelta(seconds=2)).kid == ring.keys[0].kid


def test_negative_durations_are_refused(tmp_path: Path) -> None:
    KeyRing.load_or_create(tmp_path, None, T0)
    with pytest.raises(ValueError, match="negative"):
        rotate(tmp_path, None, T0, publish_ahead=timedelta(seconds=-1), keep_after=KEEP_AFTER)
