"""Stored posts as ``posts.v1`` messages."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from backends.posts.store import PostRecord
from stubs.posts.v1 import posts_pb2


def image_url(post_id: str) -> str:
    """The gateway path that serves a post's image."""
    return f"/api/v1/posts/{post_id}/image"


def image_etag(image_key: str) -> str:
    """The strong entity tag of an image: the SHA-256 of its bytes (the second part of its key)."""
    return image_key.rpartition("/")[2]


def post_message(record: PostRecord) -> posts_pb2.Post:
    created, updated = Timestamp(), Timestamp()
    created.FromDatetime(record.created_at)
    updated.FromDatetime(record.updated_at)
    message = posts_pb2.Post(
        id=record.id,
        tenant_id=record.tenant_id,
        author_id=record.author_id,
        title=record.title,
        content=record.content,
        created_at=created,
        updated_at=updated,
    )
    if record.image_key:
        message.image_url = image_url(record.id)
    return message
