"""The S3 blob store against a real S3-compatible HTTP server (moto's), started by the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from backends.posts.blobs import BlobStoreError, blob_key, open_blob_store
from backends.posts.s3_blobs import S3BlobStore
from harness.servers.s3 import s3_server

pytestmark = pytest.mark.infra

BUCKET = "portico-images"
DATA = b"\x89PNG\r\n\x1a\n not really, but S3 does not care"
KEY = blob_key("tenant-a", DATA)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials, and no shared AWS config or credentials files of the machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "portico-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "portico-test-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def endpoint(aws_env: None) -> Iterator[str]:
    with s3_server() as url:
        yield url


def _raw_client(endpoint: str) -> Any:
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1")


@pytest.fixture
async def store(endpoint: str) -> AsyncIterator[S3BlobStore]:
    client = _raw_client(endpoint)
    client.create_bucket(Bucket=BUCKET)
    client.close()
    opened = open_blob_store(f"s3://{BUCKET}/posts/images?endpoint_url={endpoint}&region=us-east-1")
    assert isinstance(opened, S3BlobStore)
    yield opened
    await opened.close()


async def test_round_trip_with_content_type_under_the_prefix(store: S3BlobStore, endpoint: str) -> None:
    assert await store.get(KEY) is None
    assert not await store.exists(KEY)
    await store.put(KEY, DATA, "image/png")
    await store.put(KEY, DATA, "image/png")  # idempotent
    assert await store.exists(KEY)
    assert await store.get(KEY) == DATA

    client = _raw_client(endpoint)
    head = client.head_object(Bucket=BUCKET, Key=f"posts/images/{KEY}")
    listed = client.list_objects_v2(Bucket=BUCKET)
    client.close()
    assert head["ContentType"] == "image/png"
    assert head["ContentLength"] == len(DATA)
    assert [item["Key"] for item in listed["Contents"]] == [f"posts/images/{KEY}"]


async def test_delete_and_delete_of_missing(store: S3BlobStore) -> None:
    await store.put(KEY, DATA, "image/png")
    await store.delete(KEY)
    assert await store.get(KEY) is None
    assert not await store.exists(KEY)
    await store.delete(KEY)
    await store.delete(blob_key("tenant-b", b"never stored"))


async def test_invalid_keys_never_reach_s3(store: S3BlobStore) -> None:
    for key in ("../" + KEY, "x", KEY + "/.."):
        with pytest.raises(ValueError, match="invalid blob key"):
            await store.get(key)
        with pytest.raises(ValueError, match="invalid blob key"):
            await store.put(key, DATA, "image/png")


async def test_check_follows_the_server(aws_env: None) -> None:
    with s3_server() as url:
        client = _raw_client(url)
        client.create_bucket(Bucket=BUCKET)
        client.close()
        store = open_blob_store(f"s3://{BUCKET}?endpoint_url={url}&region=us-east-1")
        assert await store.check()
        missing_bucket = open_blob_store(f"s3://portico-missing?endpoint_url={url}&region=us-east-1")
        assert not await missing_bucket.check()
        with pytest.raises(BlobStoreError, match="S3 get_object failed: NoSuchBucket"):
            await missing_bucket.get(KEY)
        await missing_bucket.close()
    # The server is gone: health says so, operations raise the store's own error (not botocore's).
    assert not await store.check()
    with pytest.raises(BlobStoreError, match="S3 get_object failed: EndpointConnectionError") as caught:
        await store.get(KEY)
    assert "portico-test-secret" not in str(caught.value)
    with pytest.raises(BlobStoreError):
        await store.put(KEY, DATA, "image/png")
    await store.close()


async def test_keys_lists_the_blobs_under_the_prefix_by_age(store: S3BlobStore, endpoint: str) -> None:
    others = [blob_key("tenant-b", bytes([n])) for n in range(3)]
    for key in (KEY, *others):
        await store.put(key, DATA, "image/png")
    # Not a blob of this store: another prefix, and a name that is no key.
    raw = _raw_client(endpoint)
    raw.put_object(Bucket=BUCKET, Key=f"elsewhere/{KEY}", Body=b"x")
    raw.put_object(Bucket=BUCKET, Key=f"{store.prefix}notes.txt", Body=b"x")
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert sorted(await store.keys(later)) == sorted([KEY, *others])
    assert await store.keys(datetime.now(UTC) - timedelta(hours=1)) == []
