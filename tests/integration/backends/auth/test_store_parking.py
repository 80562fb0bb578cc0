"""Names the auth credential store parks and settles: a username or email that arrives (by a
``user.updated`` event) while another credential still holds it, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from backends.auth.store import Credential, CredentialStore
from harness.stores.auth import DIALECTS, auth_database
from meshkit.db.database import Database


@pytest.fixture(scope="module", params=DIALECTS)
async def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    async with auth_database(request, tmp_path_factory.mktemp("auth-parking")) as database:
        yield database


@pytest.fixture(scope="module")
def store(db: Database) -> CredentialStore:
    return CredentialStore(db.dialect)


HASH = "$argon2id$v=19$m=19456,t=2,p=1$x"  # never checked here


def new_tenant() -> str:
    return f"t-{secrets.token_hex(8)}"


async def add(db: Database, store: CredentialStore, tenant_id: str, username: str) -> Credential:
    async with db.write() as session:
        return await store.add(
            session,
            user_id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            username=username,
            email=f"{username}@example.com",
            password_hash=HASH,
            roles=("user",),
        )


async def rename(db: Database, store: CredentialStore, user_id: str, **names: str) -> tuple[str, ...]:
    async with db.write() as session:
        return await store.update_profile(session, user_id, **names)


async def disable(db: Database, store: CredentialStore, user_id: str) -> None:
    async with db.write() as session:
        await store.disable(session, user_id)


async def who(db: Database, store: CredentialStore, tenant_id: str, identifier: str) -> str | None:
    """The user id a login by ``identifier`` finds, if any."""
    async with db.read() as session:
        found = await store.find_for_login(session, tenant_id, identifier)
    return found.user_id if found else None


async def parked(db: Database, store: CredentialStore, user_id: str) -> tuple[str, ...]:
    async with db.read() as session:
        credential = await store.get(session, user_id)
    assert credential is not None
    return credential.parked


async def test_a_name_still_held_is_parked_and_the_holders_rename_hands_it_over(
    db: Database, store: CredentialStore
) -> None:
    tenant = new_tenant()
    holder, mover = await add(db, store, tenant, "bob"), await add(db, store, tenant, "carl")
    # Users renamed bob away and then carl to "Bob"; the second event is here first.
    assert await rename(db, store, mover.user_id, username="Bob") == ("username",)
    assert await who(db, store, tenant, "bob") == holder.user_id
    assert await who(db, store, tenant, "carl") is None  # let go of: users may give it to someone else
    assert await who(db, store, tenant, "carl@example.com") == mover.user_id  # the email still works
    assert await parked(db, store, mover.user_id) == ("username",)

    assert await rename(db, store, holder.user_id, username="robert") == ()
    assert await who(db, store, tenant, "BOB") == mover.user_id
    assert await who(db, store, tenant, "robert") == holder.user_id
    assert await parked(db, store, mover.user_id) == ()


async def test_the_holders_deletion_hands_a_parked_email_over(db: Database, store: CredentialStore) -> None:
    tenant = new_tenant()
    holder, mover = await add(db, store, tenant, "dana"), await add(db, store, tenant, "eve")
    assert await rename(db, store, mover.user_id, email="DANA@example.com") == ("email",)
    assert await who(db, store, tenant, "dana@example.com") == holder.user_id
    assert await who(db, store, tenant, "eve") == mover.user_id  # the username is untouched
    await disable(db, store, holder.user_id)
    assert await who(db, store, tenant, "dana@example.com") == mover.user_id


async def test_removing_a_credential_hands_its_names_over(db: Database, store: CredentialStore) -> None:
    tenant = new_tenant()
    holder, mover = await add(db, store, tenant, "fay"), await add(db, store, tenant, "gus")
    await rename(db, store, mover.user_id, username="fay")
    async with db.write() as session:
        await store.remove(session, holder.user_id)
    assert await who(db, store, tenant, "fay") == mover.user_id


async def test_a_later_change_replaces_a_parked_name(db: Database, store: CredentialStore) -> None:
    tenant = new_tenant()
    holder, mover = await add(db, store, tenant, "hal"), await add(db, store, tenant, "ian")
    await rename(db, store, mover.user_id, username="hal")
    assert await rename(db, store, mover.user_id, username="hal") == ("username",)  # a redelivery
    assert await rename(db, store, mover.user_id, username="ivan") == ()
    assert await who(db, store, tenant, "ivan") == mover.user_id
    await disable(db, store, holder.user_id)  # nothing waits for "hal" any more
    assert await who(db, store, tenant, "hal") is None


async def test_two_waiting_for_one_name_are_served_in_turn(db: Database, store: CredentialStore) -> None:
    tenant = new_tenant()
    holder = await add(db, store, tenant, "jo")
    first, second = await add(db, store, tenant, "kai"), await add(db, store, tenant, "lea")
    await rename(db, store, first.user_id, username="jo")
    await rename(db, store, second.user_id, username="jo")
    await disable(db, store, holder.user_id)
    assert await who(db, store, tenant, "jo") == first.user_id  # the longest waiting
    assert await parked(db, store, second.user_id) == ("username",)
    # That one was the stale claim: its own rename away arrives and hands the name on.
    await rename(db, store, first.user_id, username="kim")
    assert await who(db, store, tenant, "jo") == second.user_id
    assert await who(db, store, tenant, "kim") == first.user_id


async def test_a_swap_of_two_names_settles_in_either_order(db: Database, store: CredentialStore) -> None:
    for order in ((0, 1), (1, 0)):
        tenant = new_tenant()
        ann, ben = await add(db, store, tenant, "ann"), await add(db, store, tenant, "ben")
        events = [(ann.user_id, "ben"), (ben.user_id, "ann")]
        for i in order:
            user_id, name = events[i]
            await rename(db, store, user_id, username=name)
        assert await who(db, store, tenant, "ann") == ben.user_id
        assert await who(db, store, tenant, "ben") == ann.user_id
        assert await parked(db, store, ann.user_id) == await parked(db, store, ben.user_id) == ()


async def test_every_order_of_the_events_ends_in_the_same_logins(
    db: Database, store: CredentialStore
) -> None:
    """What users did, one change at a time: ann renamed to "amy", ben to "ann", cat was deleted, and amy
    renamed to "cat". Events of one user arrive in order, those of different users in any order."""

    async def run(interleaving: tuple[str, ...]) -> dict[str, Any]:
        tenant = new_tenant()
        a, b, c = [await add(db, store, tenant, name) for name in ("ann", "ben", "cat")]
        steps: dict[str, list[Callable[[], Awaitable[object]]]] = {
            "a": [
                lambda: rename(db, store, a.user_id, username="amy"),
                lambda: rename(db, store, a.user_id, username="cat"),
            ],
            "b": [lambda: rename(db, store, b.user_id, username="ann")],
            "c": [lambda: disable(db, store, c.user_id)],
        }
        for user in interleaving:
            await steps[user].pop(0)()
        ids = {a.user_id: "a", b.user_id: "b", c.user_id: "c"}
        logins = {name: await who(db, store, tenant, name) for name in ("ann", "ben", "cat", "amy")}
        waiting = {ids[u]: await parked(db, store, u) for u in ids}
        return {"logins": {name: ids.get(user or "") for name, user in logins.items()}, "parked": waiting}

    orders = sorted(set(itertools.permutations("aabc")))
    outcomes = [await run(order) for order in orders]
    expected = {
        "logins": {"ann": "b", "ben": None, "cat": "a", "amy": None},
        "parked": {"a": (), "b": (), "c": ()},
    }
    assert len(orders) == 12
    assert all(outcome == expected for outcome in outcomes), list(zip(orders, outcomes, strict=True))


# PostgreSQL only: SQLite runs one writer at a time, so two such transactions never overlap there.
@pytest.mark.parametrize("db", [pytest.param("postgresql", marks=pytest.mark.infra)], indirect=True)
@pytest.mark.parametrize("first", ["release", "park"])
async def test_a_release_racing_a_parking_still_hands_the_name_over(
    db: Database, store: CredentialStore, first: str
) -> None:
    """Two transactions at once: one renames the holder away, the other parks the name it lets go of.
    Whichever writes first, the name ends with the one who asked for it (the holder's row is locked)."""
    assert db.dialect == "postgresql"
    tenant = new_tenant()
    holder, mover = await add(db, store, tenant, "max"), await add(db, store, tenant, "ned")
    steps = {
        "release": lambda session: store.update_profile(session, holder.user_id, username="maxwell"),
        "park": lambda session: store.update_profile(session, mover.user_id, username="max"),
    }
    written, commit = asyncio.Event(), asyncio.Event()

    async def early() -> None:
        async with db.write() as session:
            await steps[first](session)
            written.set()
            await commit.wait()

    async def late() -> None:
        await written.wait()
        async with db.write() as session:
            await steps["park" if first == "release" else "release"](session)

    tasks = [asyncio.create_task(early()), asyncio.create_task(late())]
    await written.wait()
    await asyncio.sleep(0.5)
    assert not tasks[1].done()  # waiting for the lock on the holder's row
    commit.set()
    await asyncio.gather(*tasks)
    assert await who(db, store, tenant, "max") == mover.user_id
    assert await who(db, store, tenant, "maxwell") == holder.user_id
    assert await parked(db, store, mover.user_id) == ()
