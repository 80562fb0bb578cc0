"""Refresh-token families on SQLite and on PostgreSQL: rotation, expiry, reuse, races, revocation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Row, func, select

from backends.auth.models import refresh_families, refresh_tokens
from backends.auth.refresh_tokens import Issued, RefreshTokens, RotateResult, hash_token
from harness.stores.auth import DIALECTS, auth_database
from meshkit.db.database import Database

IDLE = timedelta(hours=1)
ABSOLUTE = timedelta(hours=3)
GRACE = timedelta(seconds=10)
T0 = datetime(2030, 1, 1, 12, tzinfo=UTC)
TICK = timedelta(microseconds=1)


@pytest.fixture(scope="module", params=DIALECTS)
async def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    async with auth_database(request, tmp_path_factory.mktemp("auth-refresh")) as database:
        yield database


@pytest.fixture(scope="module")
def tokens() -> RefreshTokens:
    return RefreshTokens(idle=IDLE, absolute=ABSOLUTE, reuse_grace=GRACE)


async def start(db: Database, tokens: RefreshTokens, *, user_id: str = "", now: datetime = T0) -> Issued:
    async with db.write() as session:
        return await tokens.start_family(
            session, user_id=user_id or str(uuid.uuid4()), tenant_id="acme", now=now
        )


async def rotate(db: Database, tokens: RefreshTokens, presented: str, now: datetime) -> RotateResult:
    async with db.write() as session:
        return await tokens.rotate(session, presented, now)


async def family(db: Database, family_id: str) -> Row[Any]:
    async with db.read() as session:
        query = select(refresh_families).where(refresh_families.c.family_id == family_id)
        return (await session.execute(query)).one()


async def chain(db: Database, tokens: RefreshTokens, times: list[datetime]) -> list[str]:
    """A family started at ``times[0]`` and rotated at each later time; its tokens, oldest first."""
    issued = await start(db, tokens, now=times[0])
    plaintexts = [issued.token]
    for now in times[1:]:
        result = await rotate(db, tokens, plaintexts[-1], now)
        assert result.outcome == "rotated"
        assert result.token is not None
        plaintexts.append(result.token)
    return plaintexts


# -- rotation and expiry ---------------------------------------------------------------------------


async def test_rotation_spends_the_token_and_issues_its_child(db: Database, tokens: RefreshTokens) -> None:
    user_id = str(uuid.uuid4())
    first = await start(db, tokens, user_id=user_id)
    assert first.expires_at == T0 + IDLE
    assert len(first.token) == 43  # 32 random bytes, base64url
    later = T0 + timedelta(minutes=30)
    second = await rotate(db, tokens, first.token, later)
    assert second.outcome == "rotated"
    assert (second.user_id, second.tenant_id, second.family_id) == (user_id, "acme", first.family_id)
    assert second.token is not None
    assert second.token != first.token
    assert second.expires_at == later + IDLE
    third = await rotate(db, tokens, second.token, later + timedelta(minutes=30))
    assert third.outcome == "rotated"
    assert third.family_id == first.family_id
    async with db.read() as session:
        rows = (
            await session.execute(
                select(refresh_tokens.c.token_hash, refresh_tokens.c.parent_hash, refresh_tokens.c.used_at)
                .where(refresh_tokens.c.family_id == first.family_id)
                .order_by(refresh_tokens.c.created_at)
            )
        ).all()
    assert third.token is not None
    hashes = [hash_token(first.token), hash_token(second.token), hash_token(third.token)]
    assert [row.token_hash for row in rows] == hashes
    assert [row.parent_hash for row in rows] == [None, *hashes[:2]]
    assert [row.used_at for row in rows] == [later, later + timedelta(minutes=30), None]


async def test_a_token_expires_when_idle(db: Database, tokens: RefreshTokens) -> None:
    fresh = await start(db, tokens)
    assert (await rotate(db, tokens, fresh.token, T0 + IDLE - TICK)).outcome == "rotated"
    stale = await start(db, tokens)
    result = await rotate(db, tokens, stale.token, T0 + IDLE)
    assert (result.outcome, result.reason, result.family_id) == ("invalid", "expired", stale.family_id)
    assert (await family(db, stale.family_id)).revoked_at is None  # expired, not revoked


async def test_the_absolute_expiry_caps_the_family(db: Database, tokens: RefreshTokens) -> None:
    minutes = [T0 + timedelta(minutes=m) for m in (0, 50, 100, 150)]
    plaintexts = await chain(db, tokens, minutes[:-1])
    last = await rotate(db, tokens, plaintexts[-1], minutes[-1])
    assert last.outcome == "rotated"
    assert last.expires_at == T0 + ABSOLUTE  # not 150 min + idle
    assert last.token is not None
    expired = await rotate(db, tokens, last.token, T0 + ABSOLUTE)
    assert (expired.outcome, expired.reason) == ("invalid", "expired")
    assert (await rotate(db, tokens, last.token, T0 + ABSOLUTE - TICK)).outcome == "rotated"


async def test_unknown_tokens_are_invalid(db: Database, tokens: RefreshTokens) -> None:
    for presented in ("", "x", "not-a-token-we-issued", "A" * 10_000):
        result = await rotate(db, tokens, presented, T0)
        assert (result.outcome, result.reason, result.family_id) == ("invalid", "unknown", None)


async def test_a_revoked_family_is_invalid_and_keeps_its_first_reason(
    db: Database, tokens: RefreshTokens
) -> None:
    issued = await start(db, tokens)
    async with db.write() as session:
        await tokens.revoke_family(session, issued.family_id, "logout", T0 + TICK)
        await tokens.revoke_family(session, issued.family_id, "user_deleted", T0 + 2 * TICK)
    result = await rotate(db, tokens, issued.token, T0 + 3 * TICK)
    assert (result.outcome, result.reason, result.family_id) == ("invalid", "revoked", issued.family_id)
    row = await family(db, issued.family_id)
    assert (row.revoked_at, row.revoked_reason) == (T0 + TICK, "logout")


# -- reuse and races -------------------------------------------------------------------------------


async def test_reuse_after_the_grace_revokes_the_family(db: Database, tokens: RefreshTokens) -> None:
    first, second = await chain(db, tokens, [T0, T0])
    replay = await rotate(db, tokens, first, T0 + GRACE)
    assert replay.outcome == "reuse"
    assert replay.token is None
    assert (await family(db, replay.family_id or "")).revoked_reason == "reuse"
    child = await rotate(db, tokens, second, T0 + GRACE)
    assert (child.outcome, child.reason) == ("invalid", "revoked")
    again = await rotate(db, tokens, first, T0 + GRACE)
    assert (again.outcome, again.reason) == ("invalid", "revoked")


async def test_the_immediate_parent_within_the_grace_is_a_race(db: Database, tokens: RefreshTokens) -> None:
    first, second = await chain(db, tokens, [T0, T0])
    race = await rotate(db, tokens, first, T0 + GRACE - TICK)
    assert race.outcome == "race"
    assert race.token is None
    assert (await family(db, race.family_id or "")).revoked_at is None
    # The pair the first request got stays valid.
    assert (await rotate(db, tokens, second, T0 + GRACE)).outcome == "rotated"


async def test_the_grace_never_covers_older_tokens(db: Database, tokens: RefreshTokens) -> None:
    grandparent, _parent, _live = await chain(db, tokens, [T0, T0, T0])
    replay = await rotate(db, tokens, grandparent, T0 + TICK)  # well within the grace
    assert replay.outcome == "reuse"
    assert (await family(db, replay.family_id or "")).revoked_reason == "reuse"


async def test_a_spent_token_is_a_replay_even_past_its_own_idle_expiry(
    db: Database, tokens: RefreshTokens
) -> None:
    # The family stays alive by rotating; its first token, long idle, is replayed.
    now = T0 + timedelta(minutes=50)
    first, *_ = await chain(db, tokens, [T0, now, now + timedelta(minutes=50)])
    replay = await rotate(db, tokens, first, T0 + IDLE + timedelta(minutes=1))
    assert replay.outcome == "reuse"


async def test_a_spent_token_of_a_dead_family_is_just_invalid(db: Database, tokens: RefreshTokens) -> None:
    first, _live = await chain(db, tokens, [T0, T0])
    result = await rotate(db, tokens, first, T0 + IDLE)  # the live token has idled out
    assert (result.outcome, result.reason) == ("invalid", "expired")
    assert (await family(db, result.family_id or "")).revoked_at is None


@pytest.mark.parametrize("callers", [2, 6])
async def test_concurrent_rotations_of_one_token_rotate_it_once(
    db: Database, tokens: RefreshTokens, callers: int
) -> None:
    issued = await start(db, tokens)
    results = await asyncio.gather(*(rotate(db, tokens, issued.token, T0) for _ in range(callers)))
    assert sorted(result.outcome for result in results) == ["race"] * (callers - 1) + ["rotated"]
    winner = next(result for result in results if result.outcome == "rotated")
    assert winner.token is not None
    async with db.read() as session:
        live = await session.scalar(
            select(func.count())
            .select_from(refresh_tokens)
            .where(refresh_tokens.c.family_id == issued.family_id, refresh_tokens.c.used_at.is_(None))
        )
    assert live == 1
    # After the grace the same token is a replay, and the whole family (the new child too) is revoked.
    assert (await rotate(db, tokens, issued.token, T0 + GRACE)).outcome == "reuse"
    child = await rotate(db, tokens, winner.token, T0 + GRACE)
    assert (child.outcome, child.reason) == ("invalid", "revoked")


async def test_a_second_rotation_waits_for_the_first_to_commit(db: Database, tokens: RefreshTokens) -> None:
    """The lock, seen directly: the second transaction is held until the first one ends."""
    issued = await start(db, tokens)
    async with db.write() as session:
        first = await tokens.rotate(session, issued.token, T0)
        second = asyncio.create_task(rotate(db, tokens, issued.token, T0))
        await asyncio.sleep(0.3)
        assert not second.done()
    assert first.outcome == "rotated"
    assert (await second).outcome == "race"


# -- revocation ------------------------------------------------------------------------------------


async def test_revoke_family_of_a_token_live_or_spent(db: Database, tokens: RefreshTokens) -> None:
    user_id = str(uuid.uuid4())
    live = await start(db, tokens, user_id=user_id)
    spent_first = await start(db, tokens, user_id=user_id)
    spent_result = await rotate(db, tokens, spent_first.token, T0)
    async with db.write() as session:
        assert await tokens.revoke_family_of(session, live.token, "logout", T0) == live.family_id
        assert (
            await tokens.revoke_family_of(session, spent_first.token, "logout", T0) == spent_first.family_id
        )
        assert await tokens.revoke_family_of(session, "unknown", "logout", T0) is None
        assert await tokens.revoke_family_of(session, "", "logout", T0) is None
    for presented in (live.token, spent_result.token or ""):
        result = await rotate(db, tokens, presented, T0)
        assert (result.outcome, result.reason) == ("invalid", "revoked")
    assert (await family(db, live.family_id)).revoked_reason == "logout"


async def test_revoke_family_of_another_users_token_does_nothing(db: Database, tokens: RefreshTokens) -> None:
    victim = await start(db, tokens)
    async with db.write() as session:
        revoked = await tokens.revoke_family_of(
            session, victim.token, "logout", T0, user_id=str(uuid.uuid4())
        )
    assert revoked is None
    assert (await family(db, victim.family_id)).revoked_at is None
    owner = (await family(db, victim.family_id)).user_id
    async with db.write() as session:
        assert (
            await tokens.revoke_family_of(session, victim.token, "logout", T0, user_id=owner)
            == victim.family_id
        )


async def test_revoke_others_spares_the_kept_login(db: Database, tokens: RefreshTokens) -> None:
    user_id = str(uuid.uuid4())
    kept, *others = [await start(db, tokens, user_id=user_id) for _ in range(3)]
    async with db.write() as session:
        revoked = await tokens.revoke_others(session, user_id, kept.family_id, "password_changed", T0 + TICK)
    assert sorted(revoked) == sorted(login.family_id for login in others)
    assert (await rotate(db, tokens, kept.token, T0 + TICK)).outcome == "rotated"
    for login in others:
        assert (await rotate(db, tokens, login.token, T0 + TICK)).reason == "revoked"


async def test_revoke_user_revokes_every_family_of_the_user(db: Database, tokens: RefreshTokens) -> None:
    user_id, bystander = str(uuid.uuid4()), str(uuid.uuid4())
    logins = [await start(db, tokens, user_id=user_id) for _ in range(3)]
    other = await start(db, tokens, user_id=bystander)
    async with db.write() as session:
        await tokens.revoke_family(session, logins[0].family_id, "logout", T0)
        assert await tokens.revoke_user(session, user_id, "user_deleted", T0 + TICK) == 2
        assert await tokens.revoke_user(session, user_id, "user_deleted", T0 + TICK) == 0
    for login in logins:
        assert (await rotate(db, tokens, login.token, T0 + TICK)).reason == "revoked"
    assert [(await family(db, login.family_id)).revoked_reason for login in logins] == [
        "logout",
        "user_deleted",
        "user_deleted",
    ]
    assert (await rotate(db, tokens, other.token, T0 + TICK)).outcome == "rotated"


async def test_reasons_must_fit_the_column(db: Database, tokens: RefreshTokens) -> None:
    issued = await start(db, tokens)
    async with db.write() as session:
        for reason in ("", "x" * 51):
            with pytest.raises(ValueError, match="reason"):
                await tokens.revoke_family(session, issued.family_id, reason, T0)


async def test_purge_expired_deletes_dead_families_with_their_tokens(
    db: Database, tokens: RefreshTokens
) -> None:
    # Far before every other test's families, so the purge leaves theirs alone.
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    dead = await chain(db, tokens, [long_ago, long_ago])
    alive = await start(db, tokens, now=long_ago + timedelta(hours=1))
    async with db.write() as session:
        assert await tokens.purge_expired(session, long_ago + ABSOLUTE) == 1
    async with db.read() as session:
        remaining = set((await session.execute(select(refresh_tokens.c.token_hash))).scalars().all())
    assert not {hash_token(token) for token in dead} & remaining
    assert hash_token(alive.token) in remaining


# -- storage ---------------------------------------------------------------------------------------


async def test_tokens_are_stored_only_as_hashes(db: Database, tokens: RefreshTokens) -> None:
    issued = await start(db, tokens)
    rotated = await rotate(db, tokens, issued.token, T0)
    assert rotated.token is not None
    plaintexts = [issued.token, rotated.token]
    async with db.read() as session:
        stored = [
            *(await session.execute(select(refresh_tokens))).all(),
            *(await session.execute(select(refresh_families))).all(),
        ]
        hashes = set(
            (
                await session.execute(
                    select(refresh_tokens.c.token_hash).where(refresh_tokens.c.family_id == issued.family_id)
                )
            ).scalars()
        )
    everything = " ".join(str(value) for row in stored for value in row)
    for plaintext in plaintexts:
        assert plaintext not in everything
    assert hashes == {hash_token(plaintext) for plaintext in plaintexts}


# -- the owner, read before asking the users backend -------------------------------------------------


async def owner(db: Database, tokens: RefreshTokens, presented: str, now: datetime) -> tuple[str, str] | None:
    async with db.read() as session:
        return await tokens.owner(session, presented, now)


async def test_the_owner_is_named_only_where_a_refresh_could_come_of_it(
    db: Database, tokens: RefreshTokens
) -> None:
    user_id = str(uuid.uuid4())
    first = await start(db, tokens, user_id=user_id)
    assert await owner(db, tokens, first.token, T0) == (user_id, "acme")
    assert await owner(db, tokens, first.token, T0 + IDLE) is None  # idle past its expiry: "expired"
    second = await rotate(db, tokens, first.token, T0 + timedelta(minutes=50))
    assert second.token is not None
    # Spent, its own idle expiry past: still named, as rotate decides between a race and a replay.
    assert await owner(db, tokens, first.token, T0 + IDLE + TICK) == (user_id, "acme")
    assert await owner(db, tokens, second.token, T0 + ABSOLUTE) is None  # the family's end
    assert await owner(db, tokens, "not-a-token-we-issued", T0) is None
    async with db.write() as session:
        await tokens.revoke_family(session, first.family_id, "logout", T0 + timedelta(minutes=55))
    assert await owner(db, tokens, second.token, T0 + timedelta(minutes=56)) is None  # revoked
