"""The posts store and image references on SQLite and on PostgreSQL, from the real migrations."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from backends.posts.blobs import BlobStore, LocalBlobStore, blob_key, open_blob_store
from backends.posts.image_refs import ImageRefs
from backends.posts.models import metadata, post_images
from backends.posts.orphans import OrphanSweeper
from backends.posts.store import PostRecord, PostStore
from harness.stores.databases import DIALECTS, backend_database, schema_differences
from meshkit.db.database import Database


@pytest.fixture(scope="module", params=DIALECTS)
async def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    async with backend_database("posts", request, tmp_path_factory.mktemp("posts-store")) as database:
        yield database


@pytest.fixture(scope="module")
def store(db: Database) -> PostStore:
    return PostStore(db.dialect)


@pytest.fixture
async def blobs(tmp_path: Path) -> AsyncIterator[BlobStore]:
    opened = open_blob_store(str(tmp_path / "blobs"))
    yield opened
    await opened.close()


def new_tenant() -> str:
    return f"t-{secrets.token_hex(8)}"


def new_user() -> str:
    return str(uuid.uuid4())


async def create(db: Database, store: PostStore, tenant_id: str, author_id: str, title: str) -> PostRecord:
    async with db.write() as session:
        return await store.create(
            session, tenant_id=tenant_id, author_id=author_id, title=title, content=f"about {title}"
        )


async def titles(db: Database, store: PostStore, tenant_id: str, **kw: object) -> tuple[list[str], int]:
    async with db.read() as session:
        records, total = await store.list(session, tenant_id, page=1, page_size=100, **kw)  # type: ignore[arg-type]
    return [r.title for r in records], total


async def test_the_migration_creates_exactly_the_tables_the_code_uses(db: Database) -> None:
    assert await schema_differences(db, metadata, "posts_alembic_version") == []


async def test_lists_newest_first_with_totals_pages_and_an_author_filter(
    db: Database, store: PostStore
) -> None:
    tenant, alice, bob = new_tenant(), new_user(), new_user()
    for n in range(5):
        await create(db, store, tenant, alice if n % 2 == 0 else bob, f"p{n}")
    assert await titles(db, store, tenant) == (["p4", "p3", "p2", "p1", "p0"], 5)
    assert await titles(db, store, tenant, author_id=bob) == (["p3", "p1"], 2)
    async with db.read() as session:
        second, total = await store.list(session, tenant, page=2, page_size=2)
        beyond, _ = await store.list(session, tenant, page=9, page_size=2)
    assert ([r.title for r in second], total, beyond) == (["p2", "p1"], 5, [])
    assert await titles(db, store, new_tenant()) == ([], 0)


async def test_another_tenant_never_sees_or_changes_a_post(db: Database, store: PostStore) -> None:
    post = await create(db, store, new_tenant(), new_user(), "mine")
    other = new_tenant()
    async with db.write() as session:
        assert await store.get(session, other, post.id) is None
        assert await store.update(session, other, post.id, {"title": "theirs"}) is None
        assert await store.delete(session, other, post.id) is None
    async with db.read() as session:
        kept = await store.get(session, post.tenant_id, post.id)
    assert kept is not None
    assert kept.title == "mine"


async def test_update_changes_the_given_fields_and_the_time(db: Database, store: PostStore) -> None:
    post = await create(db, store, new_tenant(), new_user(), "before")
    async with db.write() as session:
        changed = await store.update(session, post.tenant_id, post.id, {"title": "after"})
    assert changed is not None
    assert (changed.title, changed.content, changed.created_at) == ("after", post.content, post.created_at)
    assert changed.updated_at > post.updated_at
    with pytest.raises(ValueError, match="not updatable"):
        async with db.write() as session:
            await store.update(session, post.tenant_id, post.id, {"author_id": new_user()})


async def test_a_deleted_post_is_gone_from_reads_but_kept(db: Database, store: PostStore) -> None:
    tenant, author = new_tenant(), new_user()
    post = await create(db, store, tenant, author, "doomed")
    async with db.write() as session:
        deleted = await store.delete(session, tenant, post.id)
        again = await store.delete(session, tenant, post.id)
    assert deleted is not None
    assert deleted.deleted_at is not None
    assert again is None
    async with db.read() as session:
        assert await store.get(session, tenant, post.id) is None
        assert await store.count_by_author(session, tenant, author) == 1
    assert await titles(db, store, tenant) == ([], 0)


async def test_a_deleted_author_s_posts_disappear_even_ones_written_afterwards(
    db: Database, store: PostStore
) -> None:
    tenant, gone, stays = new_tenant(), new_user(), new_user()
    early = await create(db, store, tenant, gone, "early")
    await create(db, store, tenant, stays, "kept")
    async with db.write() as session:
        assert await store.hide_author(session, tenant, gone) is True
        assert await store.hide_author(session, tenant, gone) is False  # idempotent
    # A post whose creation raced with the user.deleted event is hidden as well.
    late = await create(db, store, tenant, gone, "late")
    assert await titles(db, store, tenant) == (["kept"], 1)
    async with db.write() as session:
        assert await store.get(session, tenant, early.id) is None
        assert await store.update(session, tenant, late.id, {"title": "x"}) is None
        assert await store.count_by_author(session, tenant, gone) == 2  # kept for audit
    # The same user id in another tenant is someone else.
    other = new_tenant()
    await create(db, store, other, gone, "elsewhere")
    assert await titles(db, store, other) == (["elsewhere"], 1)


async def _refs(db: Database, key: str) -> int | None:
    async with db.read() as session:
        row = (await session.execute(select(post_images.c.refs).where(post_images.c.key == key))).first()
    return None if row is None else int(row.refs)


async def test_an_image_is_stored_once_and_removed_with_its_last_reference(
    db: Database, blobs: BlobStore
) -> None:
    refs = ImageRefs(db, blobs)
    data = b"\x89PNG" + secrets.token_bytes(64)
    key = blob_key(new_tenant(), data)
    for _ in range(2):
        async with db.write() as session:
            await refs.attach(session, key, data, "image/png")
    assert await _refs(db, key) == 2
    assert await blobs.get(key) == data
    async with db.write() as session:
        assert await refs.detach(session, key) is False
    assert await blobs.exists(key)
    async with db.write() as session:
        assert await refs.detach(session, key) is True
    assert await _refs(db, key) is None
    assert await blobs.exists(key)
    await refs.collect(key)
    assert not await blobs.exists(key)


async def test_collect_leaves_a_blob_that_was_taken_again(db: Database, blobs: BlobStore) -> None:
    refs = ImageRefs(db, blobs)
    data = secrets.token_bytes(32)
    key = blob_key(new_tenant(), data)
    async with db.write() as session:
        await refs.attach(session, key, data, "image/gif")
    async with db.write() as session:
        assert await refs.detach(session, key)
    async with db.write() as session:  # a new post with the same bytes, before the collection ran
        await refs.attach(session, key, data, "image/gif")
    await refs.collect(key)
    assert await blobs.get(key) == data
    assert await _refs(db, key) == 1


async def test_a_blob_lost_outside_portico_is_written_again_by_the_next_reference(
    db: Database, blobs: BlobStore
) -> None:
    refs = ImageRefs(db, blobs)
    data = secrets.token_bytes(32)
    key = blob_key(new_tenant(), data)
    async with db.write() as session:
        await refs.attach(session, key, data, "image/webp")
    await blobs.delete(key)
    async with db.write() as session:
        await refs.attach(session, key, data, "image/webp")
    assert await blobs.get(key) == data


async def test_concurrent_references_never_leave_a_referenced_blob_missing(
    db: Database, blobs: BlobStore
) -> None:
    """Posts with the same image come and go at once; afterwards a blob exists exactly when referenced."""
    refs = ImageRefs(db, blobs)
    tenant = new_tenant()
    images = [secrets.token_bytes(48) for _ in range(3)]
    keys = [blob_key(tenant, data) for data in images]
    rng = random.Random(7)  # noqa: S311 - a reproducible schedule, not a secret

    async def churn(worker: int) -> None:
        for _ in range(12):
            which = rng.randrange(len(images))
            async with db.write() as session:
                await refs.attach(session, keys[which], images[which], "image/png")
            await asyncio.sleep(rng.random() / 200)
            async with db.write() as session:
                last = await refs.detach(session, keys[which])
            if last:
                await refs.collect(keys[which])
            # Every worker ends holding one reference, so some blobs must survive.
        async with db.write() as session:
            await refs.attach(session, keys[worker % len(keys)], images[worker % len(keys)], "image/png")

    await asyncio.gather(*(churn(n) for n in range(6)))
    for n, key in enumerate(keys):
        held = await _refs(db, key)
        assert held == 2, (n, held)  # workers n and n+3 each hold one
        assert await blobs.get(key) == images[n]


async def test_the_sweep_removes_old_unreferenced_blobs_only(db: Database, blobs: BlobStore) -> None:
    refs = ImageRefs(db, blobs)
    tenant = new_tenant()
    orphan, young_orphan, referenced = (secrets.token_bytes(24) for _ in range(3))
    for data in (orphan, young_orphan):  # written, then their transaction failed: no row
        await blobs.put(blob_key(tenant, data), data, "image/png")
    async with db.write() as session:
        await refs.attach(session, blob_key(tenant, referenced), referenced, "image/png")
    registry = CollectorRegistry()
    sweeper = OrphanSweeper(blobs, refs, registry, grace=timedelta(minutes=10))
    assert isinstance(blobs, LocalBlobStore)
    hour_ago = time.time() - 3600
    for data in (orphan, referenced):
        os.utime(blobs.root / blob_key(tenant, data), (hour_ago, hour_ago))
    assert await sweeper.sweep_once() == 1
    assert not await blobs.exists(blob_key(tenant, orphan))
    assert await blobs.get(blob_key(tenant, young_orphan)) == young_orphan  # within the grace period
    assert await blobs.get(blob_key(tenant, referenced)) == referenced
    assert registry.get_sample_value("portico_posts_orphan_blobs_removed_total") == 1
