"""The local blob store, blob keys, and parsing of blob store URLs."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backends.posts.blobs import BlobStoreError, LocalBlobStore, blob_key, open_blob_store
from backends.posts.s3_blobs import S3BlobStore

KEY = blob_key("tenant-a", b"image bytes")


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def _files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_blob_key_is_a_tenant_namespace_and_the_content_digest() -> None:
    namespace, digest = KEY.split("/")
    assert namespace == hashlib.sha256(b"tenant-a").hexdigest()[:16]
    assert digest == hashlib.sha256(b"image bytes").hexdigest()
    assert re.fullmatch(r"[0-9a-f]{16}/[0-9a-f]{64}", KEY)
    assert blob_key("tenant-a", b"image bytes") == KEY
    assert blob_key("tenant-b", b"image bytes") != KEY
    assert blob_key("tenant-a", b"other bytes").split("/")[0] == namespace
    # Whatever the tenant id holds, the key stays in shape: nothing in it comes from user input.
    assert re.fullmatch(r"[0-9a-f]{16}/[0-9a-f]{64}", blob_key("../../etc/passwd\x00/", b""))


async def test_round_trip_exists_and_delete(store: LocalBlobStore) -> None:
    assert await store.get(KEY) is None
    assert not await store.exists(KEY)
    await store.put(KEY, b"image bytes", "image/png")
    assert await store.exists(KEY)
    assert await store.get(KEY) == b"image bytes"
    namespace, digest = KEY.split("/")
    assert _files(store.root) == [f"{namespace}/{digest}"]
    await store.delete(KEY)
    assert await store.get(KEY) is None
    assert not await store.exists(KEY)
    await store.close()


async def test_put_is_idempotent_and_delete_of_missing_is_fine(store: LocalBlobStore) -> None:
    await store.put(KEY, b"image bytes", "image/png")
    await store.put(KEY, b"image bytes", "image/png")
    await asyncio.gather(*(store.put(KEY, b"image bytes", "image/png") for _ in range(8)))
    assert await store.get(KEY) == b"image bytes"
    assert len(_files(store.root)) == 1
    await store.delete(KEY)
    await store.delete(KEY)
    assert _files(store.root) == []


async def test_concurrent_puts_of_new_blobs_leave_no_temp_files(store: LocalBlobStore) -> None:
    blobs = {blob_key("t", bytes([n]) * 100_000): bytes([n]) * 100_000 for n in range(16)}
    await asyncio.gather(*(store.put(key, data, "image/png") for key, data in blobs.items()))
    await asyncio.gather(*(store.put(key, data, "image/png") for key, data in blobs.items()))
    assert _files(store.root) == sorted(blobs)
    assert not [name for name in _files(store.root) if ".tmp-" in name]
    for key, data in blobs.items():
        assert await store.get(key) == data


async def test_a_failed_write_leaves_no_partial_blob_or_temp_file(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(BlobStoreError, match="No space left on device"):
        await store.put(KEY, b"image bytes", "image/png")
    assert _files(store.root) == []
    assert not await store.exists(KEY)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../" + KEY,
        KEY.split("/")[0] + "/../" + KEY.split("/")[1][3:],
        "../../../../etc/passwd",
        "/etc/passwd",
        KEY + "\n",
        KEY.upper(),
        KEY.replace("/", "\\"),
        KEY.replace("/", ""),
        KEY + "/x",
        KEY[:-1],
        KEY.split("/")[0] + "/.tmp-abc",
    ],
)
async def test_invalid_keys_are_refused_by_every_method(store: LocalBlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.put(key, b"x", "image/png")
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.get(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.delete(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.exists(key)
    assert _files(store.root) == []


async def test_check_reports_a_writable_directory(store: LocalBlobStore, tmp_path: Path) -> None:
    assert await store.check()
    assert _files(store.root) == []
    store.root.rmdir()
    assert not await store.check()


async def test_unreadable_blob_is_a_store_error_not_absent(store: LocalBlobStore) -> None:
    namespace, digest = KEY.split("/")
    (store.root / namespace / digest).mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(BlobStoreError, match="reading a blob failed"):
        await store.get(KEY)


def test_file_urls_and_plain_paths_open_a_local_store(tmp_path: Path) -> None:
    by_url = open_blob_store(f"file://{tmp_path}/a%20dir")
    assert isinstance(by_url, LocalBlobStore)
    assert by_url.root == tmp_path / "a dir"
    assert (tmp_path / "a dir").is_dir()
    by_path = open_blob_store(str(tmp_path / "b" / "c"))
    assert isinstance(by_path, LocalBlobStore)
    assert by_path.root == tmp_path / "b" / "c"
    assert isinstance(open_blob_store(f"file://localhost{tmp_path}/d"), LocalBlobStore)


def test_s3_urls_open_an_s3_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "portico-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "portico-test-secret")
    store = open_blob_store(
        "s3://portico-images/posts/v1/?endpoint_url=http://127.0.0.1:9000&region=eu-west-1"
    )
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix) == ("portico-images", "posts/v1/")
    plain = open_blob_store("s3://portico-images")
    assert isinstance(plain, S3BlobStore)
    assert plain.prefix == ""


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "non-empty filesystem path"),
        ("http://example.com/blobs", "must be file:///absolute/dir"),
        ("ftp://host/x", "must be file:///absolute/dir"),
        ("file://otherhost/tmp/x", "file:///absolute/directory"),
        ("file:relative/dir", "file:///absolute/directory"),
        ("file:///tmp/x?mode=fast", "file:///absolute/directory"),
        ("s3://", "s3://bucket/optional/prefix"),
        ("s3://Bad_Bucket/x", "s3://bucket/optional/prefix"),
        ("s3://key:secret@bucket/x", "s3://bucket/optional/prefix"),
        ("s3://bucket/x?endpoint=http://127.0.0.1:9000", r"unknown blob store S3 option\(s\) \['endpoint'\]"),
        ("s3://bucket/x?region=a&region=b", "exactly one non-empty value"),
        ("s3://bucket/x?region=", "exactly one non-empty value"),
        ("s3://bucket/x?endpoint_url=127.0.0.1:9000", "http:// or https://"),
    ],
)
def test_bad_urls_are_refused_clearly_without_echoing_them(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        open_blob_store(url)
    assert "secret" not in str(caught.value)


async def test_keys_lists_the_blobs_written_before_a_time(store: LocalBlobStore) -> None:
    old, new = blob_key("t", b"old"), blob_key("t", b"new")
    await store.put(old, b"old", "image/png")
    await store.put(new, b"new", "image/png")
    hour_ago = time.time() - 3600
    os.utime(store.root / old, (hour_ago, hour_ago))
    (store.root / old.split("/")[0] / ".tmp-left-by-a-crash").write_bytes(b"x")  # never a key
    cutoff = datetime.now(UTC) - timedelta(minutes=30)
    assert await store.keys(cutoff) == [old]
    assert sorted(await store.keys(datetime.now(UTC) + timedelta(seconds=5))) == sorted([old, new])
