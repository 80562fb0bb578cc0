"""Content-addressed storage of post images: a local directory or an S3(-compatible) bucket.

A blob's key is derived from its tenant and its bytes (``blob_key``), never from user input, and every
method re-validates the key's shape, so no key can name anything outside the store. Writes are atomic:
a reader sees the whole blob or none of it. Failures other than "absent" raise ``BlobStoreError`` (the
service answers UNAVAILABLE); ``check`` never raises, it feeds the health endpoint.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    from backends.posts.s3_blobs import S3BlobStore


KEY = re.compile(r"[0-9a-f]{16}/[0-9a-f]{64}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_S3_OPTIONS = frozenset({"endpoint_url", "region"})


class BlobStoreError(Exception):
    """The store could not be reached or refused the operation (not raised for an absent blob)."""


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key``; idempotent, and atomic for readers."""

    async def get(self, key: str) -> bytes | None:
        """The blob's bytes, or None when absent."""

    async def delete(self, key: str) -> None:
        """Remove the blob; an absent blob is not an error."""

    async def exists(self, key: str) -> bool: ...

    async def keys(self, modified_before: datetime) -> list[str]:
        """Every blob key last written before ``modified_before`` (for the orphan sweep)."""

    async def check(self) -> bool:
        """Whether the store is reachable and writable right now; never raises."""

    async def close(self) -> None: ...


def blob_key(tenant_id: str, data: bytes) -> str:
    """``<tenant namespace>/<sha256 of the bytes>``: equal uploads share a blob within a tenant only."""
    namespace = hashlib.sha256(tenant_id.encode()).hexdigest()[:16]
    return f"{namespace}/{hashlib.sha256(data).hexdigest()}"


def checked_key(key: str) -> str:
    """``key`` when it has the shape of :func:`blob_key`'s keys, else ValueError."""
    if not isinstance(key, str) or KEY.fullmatch(key) is None:
        raise ValueError("invalid blob key")  # the key itself is not echoed: it may be anything
    return key


class LocalBlobStore:
    """Blobs as files ``<root>/<tenant namespace>/<digest>``, written via a temp file and ``os.replace``."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        namespace, digest = checked_key(key).split("/")
        return self.root / namespace / digest

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        # The content type is the caller's to record; a file has nowhere to keep it.
        await asyncio.to_thread(self._put, self._path(key), data)

    def _put(self, path: Path, data: bytes) -> None:
        if path.is_file():
            return  # content-addressed: the same key already holds the same bytes
        try:
            path.parent.mkdir(exist_ok=True)
            # Same directory as the target, so os.replace is a rename within one filesystem (atomic).
            # The ".tmp-" names can never match a key, so readers never see them.
            fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as temp:
                    temp.write(data)
                    temp.flush()
                    os.fsync(temp.fileno())
                os.replace(temp_name, path)
            except BaseException:
                Path(temp_name).unlink(missing_ok=True)
                raise
            _fsync_dir(path.parent)  # make the rename itself durable
        except OSError as error:
            raise BlobStoreError(
                f"writing a blob failed: {error.strerror or type(error).__name__}"
            ) from error

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._get, self._path(key))

    @staticmethod
    def _get(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise BlobStoreError(
                f"reading a blob failed: {error.strerror or type(error).__name__}"
            ) from error

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, self._path(key))

    @staticmethod
    def _delete(path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise BlobStoreError(
                f"deleting a blob failed: {error.strerror or type(error).__name__}"
            ) from error

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def keys(self, modified_before: datetime) -> list[str]:
        return await asyncio.to_thread(self._keys, modified_before.timestamp())

    def _keys(self, before: float) -> list[str]:
        found = []
        try:
            for path in self.root.glob("*/*"):
                key = f"{path.parent.name}/{path.name}"
                # Temporary files of a write in progress never match a key.
                if KEY.fullmatch(key) and path.stat().st_mtime < before:
                    found.append(key)
        except OSError as error:
            raise _failed("listing", error) from error
        return found

    async def check(self) -> bool:
        return await asyncio.to_thread(self._check)

    def _check(self) -> bool:
        try:
            with tempfile.TemporaryFile(dir=self.root, prefix=".tmp-check-") as probe:
                probe.write(b"ok")
            return True
        except OSError:
            return False

    async def close(self) -> None:
        return None


def _failed(action: str, error: OSError) -> BlobStoreError:
    return BlobStoreError(f"{action} a blob failed: {error.strerror or type(error).__name__}")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_blob_store(url: str) -> BlobStore:
    """``file:///abs/dir`` or a plain path -> LocalBlobStore; ``s3://bucket/prefix?endpoint_url=&region=``.

    Error messages never repeat the URL: a mistaken one may carry credentials.
    """
    parts = urlsplit(url)
    if parts.scheme == "":
        if not url or parts.query or parts.fragment:
            raise ValueError("blob store path must be a non-empty filesystem path")
        return LocalBlobStore(Path(url))
    if parts.scheme == "file":
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment or not path.startswith("/"):
            raise ValueError("blob store file URL must be file:///absolute/directory")
        return LocalBlobStore(Path(path))
    if parts.scheme == "s3":
        return _open_s3(url)
    raise ValueError("blob store URL must be file:///absolute/dir, a filesystem path or s3://bucket/prefix")


def _open_s3(url: str) -> S3BlobStore:
    parts = urlsplit(url)
    if _BUCKET.fullmatch(parts.netloc) is None or parts.fragment:
        raise ValueError(
            "blob store S3 URL must be s3://bucket/optional/prefix (credentials come from AWS config)"
        )
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(options) - _S3_OPTIONS)
    if unknown:
        raise ValueError(f"unknown blob store S3 option(s) {unknown}: only endpoint_url and region are known")
    values: dict[str, str] = {}
    for name, given in options.items():
        if len(given) != 1 or not given[0]:
            raise ValueError(f"blob store S3 option {name} needs exactly one non-empty value")
        values[name] = given[0]
    endpoint = values.get("endpoint_url")
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ValueError("blob store S3 endpoint_url must be an http:// or https:// URL")
    # boto3 is imported only here (about 9 MiB): a posts backend on a directory never loads it.
    from backends.posts.s3_blobs import S3BlobStore

    return S3BlobStore(parts.netloc, unquote(parts.path), endpoint_url=endpoint, region=values.get("region"))
