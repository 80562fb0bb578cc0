"""The S3(-compatible) blob store, in a module of its own so that boto3 is imported only when
``PORTICO_POSTS_BLOB_STORE_URL`` names a bucket (:func:`backends.posts.blobs.open_blob_store`)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from backends.posts.blobs import KEY, BlobStoreError, checked_key

_ABSENT_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


class S3BlobStore:
    """Blobs as objects ``<prefix><tenant namespace>/<digest>`` in one bucket; a PUT is atomic in S3."""

    def __init__(
        self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None, region: str | None = None
    ) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        # Credentials come from the standard AWS environment/config chain and are never logged here.
        # Short timeouts and a few standard retries: a stuck store must surface as UNAVAILABLE quickly.
        config = Config(connect_timeout=5, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
        # A session of its own: boto3's shared default session is not safe to create clients from threads.
        self._client: Any = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )

    def _object(self, key: str) -> str:
        return self.prefix + checked_key(key)

    async def _call(self, operation: str, **params: Any) -> Any:
        try:
            return await asyncio.to_thread(getattr(self._client, operation), Bucket=self.bucket, **params)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "unknown"))
            raise _S3Error(operation, code) from error
        except BotoCoreError as error:
            raise _S3Error(operation, type(error).__name__) from error

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self._call("put_object", Key=self._object(key), Body=data, ContentType=content_type)

    async def get(self, key: str) -> bytes | None:
        name = self._object(key)
        try:
            response = await self._call("get_object", Key=name)
            body: bytes = await asyncio.to_thread(_read_and_close, response["Body"])
            return body
        except _S3Error as error:
            if error.code in _ABSENT_CODES:
                return None
            raise
        except BotoCoreError as error:  # the body stream failing half-way
            raise _S3Error("get_object", type(error).__name__) from error

    async def delete(self, key: str) -> None:
        await self._call("delete_object", Key=self._object(key))  # S3 deletes absent keys happily

    async def exists(self, key: str) -> bool:
        try:
            await self._call("head_object", Key=self._object(key))
        except _S3Error as error:
            if error.code in _ABSENT_CODES:
                return False
            raise
        return True

    async def keys(self, modified_before: datetime) -> list[str]:
        found: list[str] = []
        token: str | None = None
        while True:
            page = await self._call(
                "list_objects_v2", Prefix=self.prefix, **({"ContinuationToken": token} if token else {})
            )
            for item in page.get("Contents", []):
                key = str(item["Key"])[len(self.prefix) :]
                if KEY.fullmatch(key) and item["LastModified"] < modified_before:
                    found.append(key)
            if not page.get("IsTruncated"):
                return found
            token = page["NextContinuationToken"]

    async def check(self) -> bool:
        try:
            await self._call("head_bucket")
        except Exception:  # health must answer, whatever went wrong
            return False
        return True

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)


class _S3Error(BlobStoreError):
    def __init__(self, operation: str, code: str) -> None:
        super().__init__(f"S3 {operation} failed: {code}")
        self.code = code


def _read_and_close(body: Any) -> bytes:
    try:
        data: bytes = body.read()
        return data
    finally:
        body.close()
