"""The users store on SQLite and on PostgreSQL: every test runs on both, from the real migrations."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from backends.users.models import users
from backends.users.store import DuplicateError, UserRecord, UserStore, search_columns
from harness.stores.users import DIALECTS, HOSTILE_QUERIES, VERSION_TABLE, migrate, users_database
from meshkit.db.database import Database


@pytest.fixture(scope="module", params=DIALECTS)
async def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    async with users_database(request, tmp_path_factory.mktemp("users-store")) as database:
        yield database


@pytest.fixture(scope="module")
def store(db: Database) -> UserStore:
    return UserStore(db.dialect)


def new_tenant() -> str:
    """Tests share a database per dialect; each works in a tenant of its own."""
    return f"t-{secrets.token_hex(8)}"


async def create(db: Database, store: UserStore, tenant_id: str, username: str, **fields: Any) -> UserRecord:
    fields.setdefault("email", f"{username}@example.com")
    async with db.write() as session:
        return await store.create(session, tenant_id=tenant_id, username=username, **fields)


async def search(
    db: Database, store: UserStore, tenant_id: str, q: str, *, page_size: int = 100
) -> list[str]:
    async with db.read() as session:
        found, total = await store.search(session, tenant_id, q, page=1, page_size=page_size)
    assert total >= len(found)
    return [record.username for record in found]


# -- migrations ------------------------------------------------------------------------------------


async def test_upgrading_again_changes_nothing(db: Database) -> None:
    await migrate(db.url)
    async with db.read() as session:
        # Fixed names, no input: S608 does not apply.
        versions = (await session.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).scalars().all()  # noqa: S608
        for table in ("users", "users_outbox", "users_processed_events"):
            await session.execute(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
    assert versions == ["0003"]


# -- create, get, list -----------------------------------------------------------------------------


async def test_create_then_get(db: Database, store: UserStore) -> None:
    tenant = new_tenant()
    created = await create(
        db,
        store,
        tenant,
        "jdoe",
        email="John.Doe@Example.com",
        first_name="John",
        last_name="Doe",
        phone="+1234567890",
        avatar_url="https://example.com/a.png",
        roles=("user", "admin"),
    )
    assert created.email == "John.Doe@Example.com"  # stored as given
    assert (created.first_name, created.last_name, created.roles) == ("John", "Doe", ("user", "admin"))
    assert created.is_active
    assert created.deleted_at is None
    assert created.created_at.tzinfo is UTC
    assert created.created_at == created.updated_at
    async with db.read() as session:
        assert await store.get(session, tenant, created.id) == created
        assert await store.get_any(session, created.id) == created
        assert await store.get(session, tenant, "00000000-0000-0000-0000-000000000000") is None
        assert await store.get(session, tenant, "not-a-uuid") is None


async def test_create_defaults(db: Database, store: UserStore) -> None:
    created = await create(db, store, new_tenant(), "plain")
    assert (created.first_name, created.last_name, created.phone, created.avatar_url) == ("", "", "", "")
    assert created.roles == ("user",)


async def test_list_is_newest_first_with_pages_and_total(db: Database, store: UserStore) -> None:
    tenant = new_tenant()
    made = [await create(db, store, tenant, f"user{i}") for i in range(5)]
    await create(db, store, new_tenant(), "elsewhere")
    pages = []
    async with db.read() as session:
        for page in (1, 2, 3, 4):
            records, total = await store.list(session, tenant, page=page, page_size=2)
            assert total == 5
            pages.append([r.username for r in records])
        with pytest.raises(ValueError, match="start at 1"):
            await store.list(session, tenant, page=0, page_size=2)
    assert pages == [["user4", "user3"], ["user2", "user1"], ["user0"], []]
    assert made[-1].created_at > made[0].created_at


async def test_tenants_are_isolated(db: Database, store: UserStore) -> None:
    mine, theirs = new_tenant(), new_tenant()
    user = await create(db, store, mine, "isolated", first_name="Isolde")
    async with db.read() as session:
        assert await store.get(session, theirs, user.id) is None
        assert await store.list(session, theirs, page=1, page_size=10) == ([], 0)
        assert await store.search(session, theirs, "Isolde", page=1, page_size=10) == ([], 0)
    async with db.write() as session:
        assert await store.update(session, theirs, user.id, {"first_name": "Mallory"}) is None
        assert await store.soft_delete(session, theirs, user.id) is None
    async with db.read() as session:
        assert await store.get(session, mine, user.id) == user
    # The same email and username are free in another tenant.
    await create(db, store, theirs, "isolated")


# -- duplicates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [
        (("ann", "ann@example.com"), ("ann2", "ANN@Example.COM"), "email"),
        (("bob", "bob@example.com"), ("BOB", "bob2@example.com"), "username"),
        (("cy", "cy@example.com"), ("Cy", "CY@example.com"), "email"),  # both taken: email first
    ],
)
async def test_duplicates_are_refused_case_insensitively(
    db: Database, store: UserStore, first: tuple[str, str], second: tuple[str, str], field: str
) -> None:
    tenant = new_tenant()
    await create(db, store, tenant, first[0], email=first[1])
    with pytest.raises(DuplicateError) as caught:
        await create(db, store, tenant, second[0], email=second[1])
    assert caught.value.field == field
    async with db.read() as session:
        assert (await store.list(session, tenant, page=1, page_size=10))[1] == 1


class _TrustingStore(UserStore):
    """Skips the pre-check, as a transaction racing another one would: the unique indexes must answer."""

    async def _check_free(self, *args: Any, **kwargs: Any) -> None:
        return None


async def test_users_without_email_share_no_uniqueness(db: Database, store: UserStore) -> None:
    tenant = new_tenant()
    first = await create(db, store, tenant, "noemail1", email="")
    second = await create(db, store, tenant, "noemail2", email="")  # the empty email is nobody's
    assert (first.email, second.email) == ("", "")
    with pytest.raises(DuplicateError) as taken:  # the username stays unique
        await create(db, store, tenant, "NoEmail1", email="")
    assert taken.value.field == "username"
    # An email given later is unique as ever.
    async with db.write() as session:
        await store.update(session, tenant, first.id, {"email": "shared@example.com"})
    with pytest.raises(DuplicateError):
        await create(db, store, tenant, "noemail3", email="Shared@example.com")


@pytest.mark.parametrize(
    ("username", "email", "field"), [("dup2", "DUP@x.io", "email"), ("DUP", "d2@x.io", "username")]
)
async def test_unique_indexes_map_to_duplicate_error(
    db: Database, username: str, email: str, field: str
) -> None:
    trusting = _TrustingStore(db.dialect)
    tenant = new_tenant()
    async with db.write() as session:
        first = await trusting.create(session, tenant_id=tenant, username="dup", email="dup@x.io")
        with pytest.raises(DuplicateError) as caught:
            await trusting.create(session, tenant_id=tenant, username=username, email=email)
        assert caught.value.field == field
        # The caller's transaction is still usable (the failed insert was rolled back to a savepoint).
        other = await trusting.create(session, tenant_id=tenant, username="other", email="other@x.io")
        with pytest.raises(DuplicateError):
            await trusting.update(
                session, tenant, other.id, {field: "DUP@x.io" if field == "email" else "Dup"}
            )
    async with db.read() as session:
        assert [r.id for r in (await trusting.list(session, tenant, page=1, page_size=10))[0]] == [
            other.id,
            first.id,
        ]


async def test_concurrent_creates_of_one_email_let_exactly_one_in(db: Database, store: UserStore) -> None:
    tenant = new_tenant()

    async def attempt(i: int) -> UserRecord | DuplicateError:
        try:
            return await create(db, store, tenant, f"racer{i}", email="Race@Example.com")
        except DuplicateError as error:
            return error

    outcomes = await asyncio.gather(*(attempt(i) for i in range(8)))
    winners = [o for o in outcomes if isinstance(o, UserRecord)]
    losers = [o for o in outcomes if isinstance(o, DuplicateError)]
    assert len(winners) == 1
    assert len(losers) == 7
    assert {loser.field for loser in losers} == {"email"}
    async with db.read() as session:
        assert (await store.list(session, tenant, page=1, page_size=10))[1] == 1


# -- soft delete -----------------------------------------------------------------------------------


async def test_soft_delete_keeps_the_row_and_frees_email_and_username(db: Database, store: UserStore) -> None:
    tenant = new_tenant()
    user = await create(db, store, tenant, "leaving", email="Leaving@Example.com", first_name="Lea")
    async with db.write() as session:
        deleted = await store.soft_delete(session, tenant, user.id)
    assert deleted is not None
    assert not deleted.is_active
    assert deleted.deleted_at is not None
    assert deleted.deleted_at.tzinfo is UTC
    assert deleted.updated_at == deleted.deleted_at
    assert (deleted.email, deleted.username, deleted.first_name) == (
        user.email,
        user.username,
        user.first_name,
    )
    async with db.read() as session:
        assert await store.get(session, tenant, user.id) is None
        assert await store.get_any(session, user.id) == deleted
        assert await store.list(session, tenant, page=1, page_size=10) == ([], 0)
    async with db.write() as session:
        assert await store.soft_delete(session, tenant, user.id) is None
        assert await store.update(session, tenant, user.id, {"first_name": "Back"}) is None
    successor = await create(db, store, tenant, "LEAVING", email="leaving@example.com")
    async with db.read() as session:
        assert [r.id for r in (await store.list(session, tenant, page=1, page_size=10))[0]] == [successor.id]


# -- update ----------------------------------------------------------------------------------------


async def test_update_changes_only_the_given_fields(db: Database, store: UserStore) -> None:
    tenant = new_tenant()
    user = await create(db, store, tenant, "changer", first_name="Carl", last_name="Old", phone="+15550001")
    changes: dict[str, object] = {"last_name": "New", "roles": ["user", "admin"], "is_active": False}
    async with db.write() as session:
        updated = await store.update(session, tenant, user.id, changes)
    assert updated is not None
    assert (updated.first_name, updated.last_name, updated.phone) == ("Carl", "New", "+15550001")
    assert updated.roles == ("user", "admin")
    assert updated.is_active is False
    assert updated.created_at == user.created_at
    assert updated.updated_at > user.updated_at
    async with db.read() as session:
        assert await store.get(session, tenant, user.id) == updated
    async with db.write() as session:
        assert await store.update(session, tenant, user.id, {}) == updated
        assert await store.update(session, tenant, "00000000-0000-0000-0000-000000000000", changes) is None
        with pytest.raises(ValueError, match="not updatable"):
            await store.update(session, tenant, user.id, {"tenant_id": "x"})


async def test_update_refuses_a_taken_email_or_username(db: Database, store: UserStore) -> None:
    tenant = new_tenant()
    await create(db, store, tenant, "holder", email="holder@example.com")
    user = await create(db, store, tenant, "mover", email="mover@example.com")
    for field, value in (("email", "HOLDER@example.com"), ("username", "Holder")):
        with pytest.raises(DuplicateError) as caught:
            async with db.write() as session:
                await store.update(session, tenant, user.id, {field: value})
        assert caught.value.field == field
    async with db.write() as session:  # a user's own email or username in another case is no clash
        updated = await store.update(
            session, tenant, user.id, {"email": "Mover@Example.com", "username": "Mover"}
        )
    assert updated is not None
    assert (updated.email, updated.username) == ("Mover@Example.com", "Mover")


# -- search ----------------------------------------------------------------------------------------

PEOPLE = [
    ("jdoe", "John", "Doe", "john.doe@example.com"),
    ("djohn", "Doe", "John", "dj@mail.test"),
    ("runner", "Émile", "Running", "emile@mail.test"),
    ("plain_run", "Ada", "Run", "ada@mail.test"),
    ("wsmith", "Will", "Smith", "will@mail.test"),
    ("obrien", "Seán", "O'Brien", "sean@mail.test"),
    ("zz.top", "Zed", "Zulu", "contact@zztop.band"),
]


@pytest.fixture(scope="module")
async def people(db: Database, store: UserStore) -> str:
    """A tenant with :data:`PEOPLE`, only read by the tests that use it."""
    tenant = new_tenant()
    for username, first, last, email in PEOPLE:
        await create(db, store, tenant, username, first_name=first, last_name=last, email=email)
    return tenant


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("john", {"jdoe", "djohn"}),
        ("JOHN", {"jdoe", "djohn"}),
        ("jOhN dOe", {"jdoe", "djohn"}),
        ('"John Doe"', {"jdoe"}),
        ('"Doe John"', {"djohn"}),
        ('"john doe" john', {"jdoe"}),
        ("run", {"runner", "plain_run"}),  # "Running" stems to "run"
        ("running", {"runner", "plain_run"}),  # and so does the query
        ("runs", {"runner", "plain_run"}),
        ("émile", {"runner"}),
        ("EMILE", {"runner"}),  # accents and case folded on both sides
        ("sean o'brien", {"obrien"}),
        ("brien", {"obrien"}),  # the apostrophe splits the name
        ("will", {"wsmith"}),  # an English stop word, still a name
        ("john.doe@example.com", {"jdoe"}),
        ("example", {"jdoe"}),
        ("zztop", {"zz.top"}),
        ("zz.top", {"zz.top"}),
        ("djohn", {"djohn"}),
        ("mail.test", {"djohn", "runner", "plain_run", "wsmith", "obrien"}),
        ('"john dj"', set()),  # a phrase does not run from the name into the email
        ("john nobody", set()),
        ("jo", set()),  # whole words only
        ("!!", set()),  # no word at all: nothing
    ],
)
async def test_search(db: Database, store: UserStore, people: str, q: str, expected: set[str]) -> None:
    assert set(await search(db, store, people, q)) == expected


async def test_search_ranks_and_pages(db: Database, store: UserStore) -> None:
    tenant = new_tenant()
    for i in range(5):
        await create(db, store, tenant, f"member{i}", first_name="Pat", last_name=f"Member{i}")
    best = await create(db, store, tenant, "patpat", first_name="Pat", last_name="Pat", email="pat@pat.test")
    await create(db, store, tenant, "nobody", first_name="Kim")
    seen = []
    async with db.read() as session:
        for page in (1, 2, 3):
            found, total = await store.search(session, tenant, "pat", page=page, page_size=4)
            assert total == 6
            seen += [record.username for record in found]
    assert seen[0] == best.username
    assert seen[1:] == [f"member{i}" for i in reversed(range(5))]  # equal rank: newest first


async def test_search_follows_updates_and_deletes(db: Database, store: UserStore) -> None:
    tenant = new_tenant()
    user = await create(db, store, tenant, "morph", first_name="Before", email="before@example.com")
    async with db.write() as session:
        await store.update(session, tenant, user.id, {"first_name": "After", "username": "shifted"})
    assert await search(db, store, tenant, "before") == ["shifted"]  # still in the email
    assert await search(db, store, tenant, "after") == ["shifted"]
    assert await search(db, store, tenant, "morph") == []
    async with db.write() as session:
        await store.update(session, tenant, user.id, {"email": "later@example.com"})
    assert await search(db, store, tenant, "before") == []
    async with db.write() as session:
        await store.soft_delete(session, tenant, user.id)
    assert await search(db, store, tenant, "after") == []


@pytest.mark.parametrize("q", HOSTILE_QUERIES)
async def test_hostile_queries_never_raise(db: Database, store: UserStore, people: str, q: str) -> None:
    async with db.read() as session:
        found, total = await store.search(session, people, q, page=1, page_size=10)
    assert total >= len(found)


# -- the identity-key migration --------------------------------------------------------------------


@pytest.fixture(params=DIALECTS)
async def before_keys(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A users database still at the revision that compared names with the database's lower()."""
    async with users_database(request, tmp_path, revision="0001") as database:
        yield database


async def test_the_identity_key_migration_fills_the_keys_of_existing_users(before_keys: Database) -> None:
    db, tenant, now = before_keys, new_tenant(), datetime.now(UTC)
    rows = [("Kim.Lee", "Kim.Lee@Example.COM", None), ("gone", "GONE@example.com", now)]
    async with db.write() as session:
        for username, email, deleted_at in rows:
            # Only the columns of the old revision: the model's insert names no others.
            values = {"username": username, "email": email, "first_name": "A", "last_name": "B"}
            await session.execute(
                users.insert().values(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant,
                    phone="",
                    avatar_url="",
                    roles=["user"],
                    is_active=deleted_at is None,
                    created_at=now,
                    updated_at=now,
                    deleted_at=deleted_at,
                    **values,
                    **search_columns(**values),
                )
            )
    await migrate(db.url)
    async with db.read() as session:
        keys = (
            await session.execute(
                text("SELECT username_key, email_key FROM users WHERE tenant_id = :t ORDER BY username_key"),
                {"t": tenant},
            )
        ).all()
    assert [tuple(row) for row in keys] == [("gone", "gone@example.com"), ("kim.lee", "kim.lee@example.com")]
    store = UserStore(db.dialect)
    with pytest.raises(DuplicateError) as caught:
        await create(db, store, tenant, "KIM.LEE", email="other@example.com")
    assert caught.value.field == "username"
    # The deleted user's names are free, as before.
    assert (await create(db, store, tenant, "Gone", email="gone@example.com")).username == "Gone"


async def test_names_that_fold_alike_are_one_identity(db: Database, store: UserStore) -> None:
    # Beyond ASCII, lower() and the identity key differ: full case folding makes these one name.
    tenant = new_tenant()
    await create(db, store, tenant, "strasse", email="strasse@example.com")
    with pytest.raises(DuplicateError) as caught:
        await create(db, store, tenant, "STRA\u00dfE", email="other@example.com")
    assert caught.value.field == "username"
    with pytest.raises(DuplicateError) as caught:
        await create(db, store, tenant, "other", email="\uff33trasse@example.com")  # a fullwidth S
    assert caught.value.field == "email"
