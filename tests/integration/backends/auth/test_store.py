"""The auth credential store and migrations on SQLite and on PostgreSQL, from the real migrations."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from backends.auth.models import credentials, metadata
from backends.auth.store import Credential, CredentialStore, DuplicateCredential
from harness.stores.auth import DIALECTS, TABLES, VERSION_TABLE, auth_database, migrate
from harness.stores.databases import schema_differences
from meshkit.db.database import Database

HIDDEN_HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGlkZGVu"
REHASHED = "$argon2id$v=19$m=46080,t=1,p=1$c2FsdHNhbHQ$cmVoYXNoZWQ"


@pytest.fixture(scope="module", params=DIALECTS)
async def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    async with auth_database(request, tmp_path_factory.mktemp("auth-store")) as database:
        yield database


@pytest.fixture(scope="module")
def store(db: Database) -> CredentialStore:
    return CredentialStore(db.dialect)


def new_tenant() -> str:
    """Tests share a database per dialect; each works in a tenant of its own."""
    return f"t-{secrets.token_hex(8)}"


async def add(
    db: Database, store: CredentialStore, tenant_id: str, username: str, **fields: Any
) -> Credential:
    fields.setdefault("user_id", str(uuid.uuid4()))
    fields.setdefault("email", f"{username}@example.com")
    fields.setdefault("password_hash", f"$argon2id$v=19$m=19456,t=2,p=1${username}")
    fields.setdefault("roles", ("user",))
    async with db.write() as session:
        return await store.add(session, tenant_id=tenant_id, username=username, **fields)


async def login(db: Database, store: CredentialStore, tenant_id: str, identifier: str) -> Credential | None:
    async with db.read() as session:
        return await store.find_for_login(session, tenant_id, identifier)


async def get(db: Database, store: CredentialStore, user_id: str) -> Credential | None:
    async with db.read() as session:
        return await store.get(session, user_id)


# -- migrations ------------------------------------------------------------------------------------


async def test_upgrading_again_changes_nothing(db: Database) -> None:
    await migrate(db.url)
    async with db.read() as session:
        # Fixed names, no input: S608 does not apply.
        versions = (await session.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).scalars().all()  # noqa: S608
        for table in TABLES:
            await session.execute(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
    assert versions == ["0005"]


async def test_the_migrations_create_exactly_the_tables_the_code_uses(db: Database) -> None:
    assert await schema_differences(db, metadata, VERSION_TABLE) == []


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported dialect"):
        CredentialStore("mysql")


# -- add, get, find_for_login ----------------------------------------------------------------------


async def test_add_then_get_and_find_by_username_or_email_in_any_case(
    db: Database, store: CredentialStore
) -> None:
    tenant = new_tenant()
    added = await add(db, store, tenant, "JDoe", email="John.Doe@Example.com", roles=["user", "admin"])
    assert (added.username, added.email) == ("JDoe", "John.Doe@Example.com")  # kept as given
    assert added.roles == ("user", "admin")
    assert not added.disabled
    assert await get(db, store, added.user_id) == added
    for identifier in (
        "JDoe",
        "jdoe",
        "JDOE",
        "John.Doe@Example.com",
        "john.doe@example.com",
        "JOHN.DOE@EXAMPLE.COM",
    ):
        assert await login(db, store, tenant, identifier) == added, identifier
    for identifier in ("jdo", "john.doe", "", "jdoe@example.com"):
        assert await login(db, store, tenant, identifier) is None, identifier
    assert await login(db, store, new_tenant(), "jdoe") is None  # another tenant
    assert await get(db, store, str(uuid.uuid4())) is None


async def test_the_hash_stays_out_of_the_repr(db: Database, store: CredentialStore) -> None:
    added = await add(db, store, new_tenant(), "secretive", password_hash=HIDDEN_HASH)
    assert added.password_hash == HIDDEN_HASH
    assert HIDDEN_HASH not in repr(added)


async def test_roles_must_be_a_sequence_of_strings(db: Database, store: CredentialStore) -> None:
    with pytest.raises(TypeError, match="not a string"):
        await add(db, store, new_tenant(), "stringly", roles="admin")


async def test_the_same_login_in_another_tenant_is_another_credential(
    db: Database, store: CredentialStore
) -> None:
    mine, theirs = new_tenant(), new_tenant()
    first = await add(db, store, mine, "twin")
    second = await add(db, store, theirs, "twin")
    assert await login(db, store, mine, "twin") == first
    assert await login(db, store, theirs, "TWIN@example.com") == second


# -- duplicates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [
        (("ann", "ann@example.com"), ("ann2", "ANN@Example.COM"), "email"),
        (("bob", "bob@example.com"), ("BOB", "bob2@example.com"), "username"),
        (("cy", "cy@example.com"), ("Cy", "CY@example.com"), "email"),  # both taken: email first
    ],
)
async def test_a_taken_username_or_email_is_refused_case_insensitively(
    db: Database, store: CredentialStore, first: tuple[str, str], second: tuple[str, str], field: str
) -> None:
    tenant = new_tenant()
    holder = await add(db, store, tenant, first[0], email=first[1])
    with pytest.raises(DuplicateCredential) as caught:
        await add(db, store, tenant, second[0], email=second[1])
    assert caught.value.field == field
    assert await login(db, store, tenant, second[0]) in (None, holder)


async def test_a_second_credential_for_one_user_is_refused(db: Database, store: CredentialStore) -> None:
    user = await add(db, store, new_tenant(), "once")
    with pytest.raises(DuplicateCredential) as caught:
        await add(db, store, new_tenant(), "again", user_id=user.user_id)
    assert caught.value.field == "user_id"


class _TrustingStore(CredentialStore):
    """Skips the pre-checks, as a transaction racing another one would: the unique indexes must answer."""

    async def _check_free(self, *args: Any, **kwargs: Any) -> None:
        return None

    @staticmethod
    async def _held(*args: Any, **kwargs: Any) -> bool:
        return False


@pytest.mark.parametrize(
    ("username", "email", "field"), [("dup2", "DUP@x.io", "email"), ("DUP", "d2@x.io", "username")]
)
async def test_unique_indexes_map_to_duplicate_credential(
    db: Database, username: str, email: str, field: str
) -> None:
    trusting = _TrustingStore(db.dialect)
    tenant = new_tenant()
    common: dict[str, Any] = {"tenant_id": tenant, "password_hash": "h", "roles": ["user"]}
    async with db.write() as session:
        await trusting.add(session, user_id=str(uuid.uuid4()), username="dup", email="dup@x.io", **common)
        with pytest.raises(DuplicateCredential) as caught:
            await trusting.add(session, user_id=str(uuid.uuid4()), username=username, email=email, **common)
        assert caught.value.field == field
        # The caller's transaction is still usable (the failed insert was rolled back to a savepoint).
        other = await trusting.add(
            session, user_id=str(uuid.uuid4()), username="other", email="o@x.io", **common
        )
        # An update that meets the index instead parks the name, as if the pre-check had seen it taken.
        parked = await trusting.update_profile(
            session, other.user_id, **{field: "Dup@x.io" if field == "email" else "Dup"}
        )
        assert parked == (field,)
    still = "o@x.io" if field == "username" else "other"
    found = await login(db, trusting, tenant, still)
    assert found is not None
    assert (found.user_id, found.parked) == (other.user_id, (field,))
    assert await login(db, trusting, tenant, "dup") is not None


async def test_concurrent_adds_of_one_email_let_exactly_one_in(db: Database, store: CredentialStore) -> None:
    tenant = new_tenant()

    async def attempt(i: int) -> Credential | DuplicateCredential:
        try:
            return await add(db, store, tenant, f"racer{i}", email="Race@Example.com")
        except DuplicateCredential as error:
            return error

    outcomes = await asyncio.gather(*(attempt(i) for i in range(8)))
    winners = [o for o in outcomes if isinstance(o, Credential)]
    losers = [o for o in outcomes if isinstance(o, DuplicateCredential)]
    assert (len(winners), len(losers)) == (1, 7)
    assert {loser.field for loser in losers} == {"email"}
    assert await login(db, store, tenant, "race@example.com") == winners[0]


# -- disable, remove -------------------------------------------------------------------------------


async def test_a_disabled_credential_cannot_log_in_and_frees_username_and_email(
    db: Database, store: CredentialStore
) -> None:
    tenant = new_tenant()
    leaving = await add(db, store, tenant, "leaving", email="Leaving@Example.com")
    async with db.write() as session:
        await store.disable(session, leaving.user_id)
        await store.disable(session, leaving.user_id)  # a redelivered event is harmless
    assert await login(db, store, tenant, "leaving") is None
    assert await login(db, store, tenant, "leaving@example.com") is None
    disabled = await get(db, store, leaving.user_id)
    assert disabled is not None
    assert disabled.disabled
    assert disabled.username == leaving.username
    # Re-registration of the same username and email, by a new user, in any case.
    successor = await add(db, store, tenant, "LEAVING", email="leaving@example.com")
    assert await login(db, store, tenant, "Leaving") == successor
    assert await login(db, store, tenant, "LEAVING@EXAMPLE.COM") == successor
    async with db.write() as session:
        await store.disable(session, successor.user_id)
    third = await add(db, store, tenant, "leaving", email="leaving@example.com")
    assert await login(db, store, tenant, "leaving") == third


async def test_remove_deletes_the_credential(db: Database, store: CredentialStore) -> None:
    tenant = new_tenant()
    half = await add(db, store, tenant, "halfway")
    async with db.write() as session:
        await store.remove(session, half.user_id)
        await store.remove(session, half.user_id)  # compensation may run twice
    assert await get(db, store, half.user_id) is None
    assert await login(db, store, tenant, "halfway") is None
    again = await add(db, store, tenant, "halfway", user_id=half.user_id)
    assert await get(db, store, half.user_id) == again


# -- update_profile, set_password_hash -------------------------------------------------------------


async def test_update_profile_changes_the_login_keys(db: Database, store: CredentialStore) -> None:
    tenant = new_tenant()
    user = await add(db, store, tenant, "before", email="before@example.com")
    async with db.write() as session:
        await store.update_profile(session, user.user_id, username="After", email="After@Example.com")
    assert await login(db, store, tenant, "before") is None
    assert await login(db, store, tenant, "before@example.com") is None
    moved = await login(db, store, tenant, "after")
    assert moved is not None
    assert (moved.username, moved.email, moved.roles) == ("After", "After@Example.com", ("user",))
    assert await login(db, store, tenant, "AFTER@example.com") == moved
    # The old username is free for someone else now.
    await add(db, store, tenant, "before")


async def test_update_profile_changes_only_what_is_given(db: Database, store: CredentialStore) -> None:
    tenant = new_tenant()
    user = await add(db, store, tenant, "partial", email="partial@example.com")
    async with db.write() as session:
        await store.update_profile(session, user.user_id, roles=["user", "admin"])
        await store.update_profile(session, user.user_id)  # nothing to change
        await store.update_profile(session, str(uuid.uuid4()), username="ghost")  # no such credential
        # The user's own username and email in another case are no clash.
        await store.update_profile(session, user.user_id, username="PARTIAL", email="Partial@Example.com")
    updated = await get(db, store, user.user_id)
    assert updated is not None
    assert (updated.username, updated.email, updated.roles) == (
        "PARTIAL",
        "Partial@Example.com",
        ("user", "admin"),
    )
    assert updated.password_hash == user.password_hash


async def test_update_profile_follows_is_active(db: Database, store: CredentialStore) -> None:
    tenant = new_tenant()
    user = await add(db, store, tenant, "sleeper")
    assert user.active
    async with db.write() as session:
        await store.update_profile(session, user.user_id, active=False)
    paused = await login(db, store, tenant, "sleeper")
    assert paused is not None  # still found (the service refuses it), unlike a deleted user
    assert not paused.active
    async with db.write() as session:
        await store.update_profile(session, user.user_id, username="sleeper", active=True)
    assert (await get(db, store, user.user_id)) == user


async def test_set_password_hash(db: Database, store: CredentialStore) -> None:
    user = await add(db, store, new_tenant(), "rehash", password_hash=HIDDEN_HASH)
    async with db.write() as session:
        await store.set_password_hash(session, user.user_id, REHASHED)
    changed = await get(db, store, user.user_id)
    assert changed is not None
    assert changed.password_hash == REHASHED
    assert not changed.password_change_required


async def test_a_reset_requires_a_change_until_the_user_changes_it(
    db: Database, store: CredentialStore
) -> None:
    user = await add(db, store, new_tenant(), "resetme")
    flags = []
    for change_required in (True, None, False):  # an admin's reset, a rehash, the user's own change
        async with db.write() as session:
            await store.set_password_hash(session, user.user_id, REHASHED, change_required=change_required)
        current = await get(db, store, user.user_id)
        assert current is not None
        flags.append(current.password_change_required)
    assert flags == [True, True, False]


async def test_credentials_without_email_share_no_key_and_log_in_by_username(
    db: Database, store: CredentialStore
) -> None:
    tenant = new_tenant()
    first = await add(db, store, tenant, "noemail1", email="")
    await add(db, store, tenant, "noemail2", email="")  # the empty email is nobody's: no duplicate
    found = await login(db, store, tenant, "noemail1")
    assert found is not None
    assert found.user_id == first.user_id
    assert await login(db, store, tenant, "") is None
    async with db.write() as session:  # an event with no email keeps it that way
        await store.update_profile(session, first.user_id, username="noemail3", email="")
    assert await login(db, store, tenant, "noemail3") is not None


# -- the identity-key migration --------------------------------------------------------------------


@pytest.fixture(params=DIALECTS)
async def before_keys(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An auth database still at the revision whose keys were lower-cased and could not be parked."""
    async with auth_database(request, tmp_path, revision="0002") as database:
        yield database


async def test_the_identity_key_migration_recomputes_keys_and_parks_new_clashes(
    before_keys: Database,
) -> None:
    db, tenant, start = before_keys, new_tenant(), datetime(2026, 1, 1, tzinfo=UTC)
    # lower() kept "strasse" and "straße" apart; the identity key makes them one name. The older
    # credential keeps it, the younger one's username is parked; a disabled credential clashes with nobody.
    rows = [
        ("old", "strasse", "Old@Example.com", None),
        ("young", "STRA\u00dfE", "young@example.com", None),
        ("left", "Strasse", "left@example.com", start),
    ]
    ids = {}
    async with db.write() as session:
        for minutes, (name, username, email, disabled_at) in enumerate(rows):
            ids[name] = str(uuid.uuid4())
            await session.execute(
                credentials.insert().values(
                    user_id=ids[name],
                    tenant_id=tenant,
                    username=username,
                    email=email,
                    username_key=username.lower(),
                    email_key=email.lower(),
                    password_hash=HIDDEN_HASH,
                    roles=["user"],
                    created_at=start + timedelta(minutes=minutes),
                    updated_at=start,
                    disabled_at=disabled_at,
                )
            )
    await migrate(db.url)
    store = CredentialStore(db.dialect)
    assert (await get(db, store, ids["old"])) == Credential(
        user_id=ids["old"],
        tenant_id=tenant,
        username="strasse",
        email="Old@Example.com",
        password_hash=HIDDEN_HASH,
        roles=("user",),
        disabled=False,
    )
    young = await get(db, store, ids["young"])
    assert young is not None
    assert young.parked == ("username",)
    assert (await login(db, store, tenant, "STRASSE")) == await get(db, store, ids["old"])
    assert (await login(db, store, tenant, "young@example.com")) == young
    # The older credential's deletion hands the name to the younger one.
    async with db.write() as session:
        await store.disable(session, ids["old"])
    found = await login(db, store, tenant, "strasse")
    assert found is not None
    assert (found.user_id, found.parked) == (ids["young"], ())
