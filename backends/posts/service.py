"""gRPC handlers of ``posts.v1.PostService``: validate, authorize, store images and posts, record events.

Authorization (the caller is the verified token's principal):
- everything stays inside the caller's tenant; another tenant's post is simply not found;
- any user of the tenant reads; the author or an admin changes and deletes (PERMISSION_DENIED otherwise);
- creating or changing a post first asks the users backend whether the caller is a live user.
Every change writes its event to the outbox in the same transaction. Images are checked by content
(:mod:`backends.posts.images`), stored content-addressed (:mod:`backends.posts.blobs`) and reference
counted (:mod:`backends.posts.image_refs`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import NoReturn

import grpc
from sqlalchemy.ext.asyncio import AsyncSession

from backends.posts.authors import AuthorCheck, Verdict
from backends.posts.blobs import BlobStore, BlobStoreError, blob_key
from backends.posts.convert import image_etag, post_message
from backends.posts.events import POSTS
from backends.posts.image_refs import ImageRefs
from backends.posts.images import CheckedImage, ImageRejected, check_image
from backends.posts.store import PostRecord, PostStore
from meshkit.auth.interceptor import current_principal
from meshkit.auth.tokens import Principal
from meshkit.db.database import Database
from meshkit.events.outbox import Outbox
from meshkit.rpc.context import Context, actor
from meshkit.rpc.status import abort, payload_code
from meshkit.validation import normalise, page_or_default
from stubs.posts.v1 import posts_pb2, posts_pb2_grpc

log = logging.getLogger(__name__)

ADMIN = "admin"


async def _not_found(context: Context) -> NoReturn:
    await abort(context, grpc.StatusCode.NOT_FOUND, "Post not found")


async def _deny(context: Context, verb: str) -> NoReturn:
    await abort(context, grpc.StatusCode.PERMISSION_DENIED, f"Only the author or an admin can {verb} a post")


def _may_change(principal: Principal, post: PostRecord) -> bool:
    return post.author_id == principal.sub or principal.has_role(ADMIN)


@dataclass(frozen=True)
class PostsDeps:
    """Everything :class:`PostService` works with, built once by the backend's entry point."""

    db: Database
    store: PostStore
    blobs: BlobStore
    refs: ImageRefs
    outbox: Outbox
    authors: AuthorCheck
    max_image_bytes: int
    max_image_pixels: int


class PostService(posts_pb2_grpc.PostServiceServicer):
    def __init__(self, deps: PostsDeps) -> None:
        self._db = deps.db
        self._store = deps.store
        self._blobs = deps.blobs
        self._refs = deps.refs
        self._outbox = deps.outbox
        self._authors = deps.authors
        self._max_image_bytes = deps.max_image_bytes
        self._max_image_pixels = deps.max_image_pixels

    # -- helpers -------------------------------------------------------------------------------

    async def _visible_post(self, context: Context, raw_post_id: str) -> tuple[Principal, PostRecord]:
        """The caller and the post they asked for, or NOT_FOUND (another tenant's posts included)."""
        principal = current_principal()
        post_id = raw_post_id.lower()  # a UUID, by the request's rules
        async with self._db.read() as session:
            record = await self._store.get(session, principal.tenant_id, post_id)
        if record is None:
            await _not_found(context)
        return principal, record

    async def _image(self, context: Context, data: bytes) -> CheckedImage:
        """The checked image, or the call ends with 413 / 415 material (a payload reason)."""
        try:
            # Decoding a 5 MiB image takes tens of milliseconds: keep it off the event loop.
            return await asyncio.to_thread(
                check_image, data, max_bytes=self._max_image_bytes, max_pixels=self._max_image_pixels
            )
        except ImageRejected as rejected:
            await abort(
                context,
                payload_code(rejected.reason),
                rejected.message,
                reason=rejected.reason,
                violations=[("image", rejected.message)],
            )

    async def _check_author(self, context: Context, principal: Principal) -> None:
        verdict = await self._authors.check(context, principal)
        if verdict is Verdict.UNAVAILABLE:
            await abort(context, grpc.StatusCode.UNAVAILABLE, "The user service is unavailable")
        if verdict is Verdict.REFUSED:
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, "invalid or expired token")
        if verdict is Verdict.UNKNOWN:
            await abort(context, grpc.StatusCode.PERMISSION_DENIED, "Only existing users can write posts")

    async def _store_unavailable(self, context: Context, error: BlobStoreError) -> NoReturn:
        log.error("image store failed", extra={"error": type(error).__name__})
        await abort(context, grpc.StatusCode.UNAVAILABLE, "The image store is unavailable")

    async def _record(
        self, session: AsyncSession, kind: str, context: Context, principal: Principal, record: PostRecord
    ) -> None:
        event = POSTS.event(
            kind,
            record.tenant_id,
            record.id,
            actor=actor(context, principal.sub),
            entity=post_message(record),
        )
        await self._outbox.add(session, POSTS.topic, event)

    # -- RPCs ------------------------------------------------------------------------------------

    async def CreatePost(
        self, request: posts_pb2.CreatePostRequest, context: Context
    ) -> posts_pb2.CreatePostResponse:
        principal = current_principal()
        title, content = normalise(request.title), request.content  # checked by the request's rules
        image = await self._image(context, request.image) if request.image else None
        await self._check_author(context, principal)
        key = blob_key(principal.tenant_id, request.image) if image else None
        try:
            async with self._db.write() as session:
                if image and key:
                    await self._refs.attach(session, key, request.image, image.content_type)
                record = await self._store.create(
                    session,
                    tenant_id=principal.tenant_id,
                    author_id=principal.sub,
                    title=title,
                    content=content,
                    image_key=key,
                    image_type=image.content_type if image else None,
                )
                await self._record(session, "post.created", context, principal, record)
        except BlobStoreError as error:
            await self._store_unavailable(context, error)
        return posts_pb2.CreatePostResponse(post=post_message(record))

    async def GetPost(self, request: posts_pb2.GetPostRequest, context: Context) -> posts_pb2.GetPostResponse:
        _, record = await self._visible_post(context, request.post_id)
        return posts_pb2.GetPostResponse(post=post_message(record))

    async def ListPosts(
        self, request: posts_pb2.ListPostsRequest, context: Context
    ) -> posts_pb2.ListPostsResponse:
        principal = current_principal()
        page, size = page_or_default(request.page, request.page_size)
        async with self._db.read() as session:
            records, total = await self._store.list(
                session,
                principal.tenant_id,
                author_id=request.author_id.lower() or None,
                page=page,
                page_size=size,
            )
        return posts_pb2.ListPostsResponse(
            posts=[post_message(r) for r in records], total=total, page=page, page_size=size
        )

    async def UpdatePost(
        self, request: posts_pb2.UpdatePostRequest, context: Context
    ) -> posts_pb2.UpdatePostResponse:
        principal, current = await self._visible_post(context, request.post_id)
        post_id = current.id
        if not _may_change(principal, current):
            await _deny(context, "change")
        changes: dict[str, object] = {}
        if request.HasField("title"):
            changes["title"] = normalise(request.title)
        if request.HasField("content"):
            changes["content"] = request.content
        image = await self._image(context, request.image) if request.image else None
        if not changes and image is None:  # nothing to change: the current state, no event
            return posts_pb2.UpdatePostResponse(post=post_message(current))
        await self._check_author(context, principal)
        new_key = blob_key(principal.tenant_id, request.image) if image else None
        released: str | None = None
        try:
            async with self._db.write() as session:
                locked = await self._store.get(session, principal.tenant_id, post_id, for_update=True)
                if locked is None:
                    await _not_found(context)
                if not _may_change(principal, locked):  # the post changed hands in between
                    await _deny(context, "change")
                if image and new_key and new_key != locked.image_key:
                    await self._refs.attach(session, new_key, request.image, image.content_type)
                    changes |= {"image_key": new_key, "image_type": image.content_type}
                    if locked.image_key and await self._refs.detach(session, locked.image_key):
                        released = locked.image_key
                record = await self._store.update(session, principal.tenant_id, post_id, changes)
                if record is None:
                    await _not_found(context)
                await self._record(session, "post.updated", context, principal, record)
        except BlobStoreError as error:
            await self._store_unavailable(context, error)
        if released:
            await self._refs.collect(released)
        return posts_pb2.UpdatePostResponse(post=post_message(record))

    async def DeletePost(
        self, request: posts_pb2.DeletePostRequest, context: Context
    ) -> posts_pb2.DeletePostResponse:
        principal = current_principal()
        post_id = request.post_id.lower()  # a UUID, by the request's rules
        released: str | None = None
        async with self._db.write() as session:
            current = await self._store.get(session, principal.tenant_id, post_id, for_update=True)
            if current is None:
                await _not_found(context)
            if not _may_change(principal, current):
                await _deny(context, "delete")
            if current.image_key and await self._refs.detach(session, current.image_key):
                released = current.image_key
            await self._store.delete(session, principal.tenant_id, post_id)
            # The event carries the post as it was last seen, image included.
            await self._record(session, "post.deleted", context, principal, current)
        if released:
            await self._refs.collect(released)
        return posts_pb2.DeletePostResponse(message="Post deleted successfully")

    async def GetPostImage(
        self, request: posts_pb2.GetPostImageRequest, context: Context
    ) -> posts_pb2.GetPostImageResponse:
        _, record = await self._visible_post(context, request.post_id)
        if not record.image_key or not record.image_type:
            await abort(context, grpc.StatusCode.NOT_FOUND, "The post has no image")
        try:
            data = await self._blobs.get(record.image_key)
        except BlobStoreError as error:
            await self._store_unavailable(context, error)
        if data is None:
            log.error("referenced image missing from the store", extra={"post_id": record.id})
            await abort(context, grpc.StatusCode.NOT_FOUND, "The post has no image")
        return posts_pb2.GetPostImageResponse(
            data=data, content_type=record.image_type, etag=image_etag(record.image_key)
        )
